/* The registry's device files (registry/items.c): one id per line, or CSV
 * with a header naming the columns (import's Device ID,Model,Version,MNO,
 * Owner; transfer's device,code), read row by row to the end; each id
 * checked as an eID, each code read as an auth code against a stored hash. */
#include "fuzz.h"
#include "../../registry/authcode.h"
#include "../../registry/internal.h"

#include <limits.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t salt[16] = {1}, hash[32] = {2};
	char path[PATH_MAX];
	kr_fuzz_file("devices.csv", data, size, path);
	char *args[] = {path, "1000000000000001"};
	kr_items *it = NULL;
	kr_reg_item item;
	kr_err e = kr_items_open(args, 2, &it);
	for (int more = 1; !kr_failed(&e) && more;) {
		e = kr_items_next(it, &item, &more);
		if (kr_failed(&e) || !more || item.error[0])
			continue;
		kr_err id = kr_reg_device_id_check(item.device);
		int yes = 0;
		kr_err code = kr_authcode_matches(item.code, item.device, salt, hash, &yes);
		if (kr_failed(&code) || yes)
			abort(); /* no text is the code of that hash */
		(void)id;
	}
	kr_items_close(it);
	return 0;
}
