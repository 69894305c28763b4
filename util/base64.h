/* Base64 (RFC 4648 section 4) through OpenSSL's codec: the manifest's CSR
 * column, EST's bodies (RFC 8951), the API's payloads. */
#ifndef KR_BASE64_H
#define KR_BASE64_H

#include "err.h"

#include <stddef.h>
#include <stdint.h>

/* One line, no breaks; *out malloc'd and NUL-terminated. */
KR_MUST_USE kr_err kr_base64_encode(const uint8_t *in, size_t n, char **out, size_t *len);
/* Line breaks and padding allowed; KR_EINPUT for anything else. *out
 * malloc'd. */
KR_MUST_USE kr_err kr_base64_decode(const char *in, size_t n, uint8_t **out, size_t *len);

#endif
