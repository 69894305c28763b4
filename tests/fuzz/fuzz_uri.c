/* pkcs11: URIs (RFC 7512) as keyrite checks them before p11-kit parses
 * them: attribute names RFC 7512 does not define, and pin-value, refused. */
#include "fuzz.h"
#include "../../hsm/internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *uri = malloc(size + 1);
	if (!uri)
		return 0;
	memcpy(uri, data, size);
	uri[size] = '\0';
	P11KitUri *u = NULL;
	kr_err e = kr_hsm_uri_parse(uri, &u);
	if (!kr_failed(&e))
		p11_kit_uri_free(u);
	char label[33];
	e = kr_hsm_uri_token_label(uri, label);
	(void)kr_failed(&e);
	free(uri);
	return 0;
}
