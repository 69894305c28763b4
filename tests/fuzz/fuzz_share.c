/* crypto/share and crypto/vss: a share's lines as a custodian types them,
 * and a verifier's bytes, then the check of the one against the other. */
#include "fuzz.h"
#include "../../crypto/share.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* the first byte: how much is the verifier; the rest: the lines */
	size_t vlen = size ? data[0] : 0;
	if (size < 1 + vlen)
		return 0;
	kr_vss_verifier v;
	kr_err e = kr_vss_verifier_decode(data + 1, vlen, &v);
	int have_v = !kr_failed(&e);
	char *text = malloc(size - vlen);
	if (!text)
		return 0;
	memcpy(text, data + 1 + vlen, size - 1 - vlen);
	text[size - 1 - vlen] = '\0';
	kr_vss_share s = {0};
	int line = 1, ok = 1;
	for (char *p = text, *next; p && line <= KR_SHARE_LINES; p = next, line++) {
		next = strchr(p, '\n');
		if (next)
			*next++ = '\0';
		e = kr_share_read_line(p, line, &s);
		ok &= !kr_failed(&e);
	}
	if (ok && have_v) {
		e = kr_vss_check(&v, &s);
		(void)kr_failed(&e);
	}
	free(text);
	return 0;
}
