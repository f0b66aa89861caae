/*
 * reseau_tls.h -- TLS 1.2 for reseau on BearSSL.
 *
 * PLACEHOLDER: the TLS channel handler is not implemented yet. This header
 * exists so the layout is final; including it stops the build with a clear
 * message rather than linking against something that does not work.
 */
#ifndef RESEAU_H
#error "reseau_tls.h: include reseau.h before reseau_tls.h"
#endif

#error "reseau_tls.h: TLS support is not implemented yet (see the README feature table)"
