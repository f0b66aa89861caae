/* Declarations only: reseau.h (and reseau_tls.h when checked) must compile on
 * their own, without any implementation macro. Compiled as C and as C++. */
#include "reseau.h"
#ifdef CHECK_TLS
#include "reseau_tls.h"
#endif

int compile_check_decl(void);
int compile_check_decl(void) { return 0; }
