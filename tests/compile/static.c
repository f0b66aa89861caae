/* Static mode: every reseau function is static, for single-file tools.
 * Compiled, linked and run. */
#define RESEAU_STATIC
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#ifdef CHECK_TLS
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau_tls.h"
#endif

int main(void) { return 0; }
