/* serve: the registry online (keyrite serve, docs/api.md). HTTPS with
 * mutual TLS; a JSON API over the registry's commands, CMP enrollment
 * (RFC 9483 over RFC 6712's HTTP transfer) and EST (RFC 7030). It adds
 * transport, authentication and concurrency; what an account may do to a
 * device is the registry's (registry/rules.h), decided there unchanged. */
#ifndef KR_SERVE_SERVE_H
#define KR_SERVE_SERVE_H

#include "../hsm/hsm.h"
#include "../policy/config.h"
#include "../store/store.h"

/* Serves until SIGTERM or SIGINT, then finishes what is in flight and
 * returns. ready: written (and flushed) once the port listens, or NULL. */
KR_MUST_USE kr_err kr_serve_run(kr_config *cfg, kr_store *store, const kr_hsm_opts *hsm,
				FILE *ready);

#endif
