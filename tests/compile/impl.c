/* The implementation in one translation unit: compiled, linked and run.
 * See static.c for RESEAU_STATIC. */
#define RESEAU_IMPLEMENTATION
#include "reseau.h"
#ifdef CHECK_TLS
#define RESEAU_TLS_IMPLEMENTATION
#include "reseau_tls.h"
#endif

int main(void) { return 0; }
