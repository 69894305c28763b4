/* Modules, tokens, login and sessions. */
#include "internal.h"
#include "../util/parallel.h"

#include <openssl/crypto.h>
#include <p11-kit/p11-kit.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

KR_MUST_USE kr_err kr_hsm_ck_err_(CK_RV rv, kr_code code, const char *fmt, ...)
{
	kr_err e;
	e.code = code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	size_t used = strlen(e.msg);
	snprintf(e.msg + used, sizeof e.msg - used, ": %s (CKR 0x%lx)", p11_kit_strerror(rv), rv);
	return e;
}

static void fixed_string(const unsigned char *p, size_t n, char *out)
{
	/* PKCS#11 pads its fixed-size strings with blanks, unterminated. */
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0'))
		n--;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* RFC 7512 section 2.3. p11-kit ignores names it does not know; a typo such as
 * "objet=" would then silently widen the match, so keyrite refuses them. */
static const char *const path_attrs[] = {
	"token",
	"manufacturer",
	"serial",
	"model",
	"library-manufacturer",
	"library-description",
	"library-version",
	"slot-description",
	"slot-manufacturer",
	"slot-id",
	"object",
	"type",
	"id",
};
static const char *const query_attrs[] = {"pin-source", "module-name", "module-path"};

static int known(const char *name, size_t n, const char *const *list, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (strlen(list[i]) == n && memcmp(list[i], name, n) == 0)
			return 1;
	return 0;
}

static KR_MUST_USE kr_err check_names(const char *uri, const char *p, const char *end, char sep,
				      const char *const *list, size_t count)
{
	while (p < end) {
		const char *next = memchr(p, sep, (size_t)(end - p));
		if (!next)
			next = end;
		const char *eq = memchr(p, '=', (size_t)(next - p));
		size_t n = (size_t)((eq ? eq : next) - p);
		if (n == 9 && memcmp(p, "pin-value", 9) == 0)
			return kr_errf(KR_EINPUT,
				       "%s: pin-value is refused: a PIN must never appear on a "
				       "command line; use pin-source=file:/path",
				       uri);
		if (n > 0 && !known(p, n, list, count))
			return kr_errf(KR_EINPUT, "%s: unknown URI attribute '%.*s' (RFC 7512)",
				       uri, (int)n, p);
		p = next + 1;
	}
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_uri_parse(const char *uri, P11KitUri **out)
{
	KR_ENSURE(strncmp(uri, "pkcs11:", 7) == 0, KR_EINPUT,
		  "%s: not a PKCS#11 URI (RFC 7512 URIs start with 'pkcs11:')", uri);
	const char *path = uri + 7, *q = strchr(path, '?'), *end = uri + strlen(uri);
	KR_TRY(check_names(uri, path, q ? q : end, ';', path_attrs,
			   sizeof path_attrs / sizeof *path_attrs));
	if (q)
		KR_TRY(check_names(uri, q + 1, end, '&', query_attrs,
				   sizeof query_attrs / sizeof *query_attrs));
	P11KitUri *u = p11_kit_uri_new();
	KR_ENSURE(u, KR_EINTERNAL, "out of memory");
	int rc = p11_kit_uri_parse(uri, P11_KIT_URI_FOR_ANY, u);
	if (rc != P11_KIT_URI_OK) {
		p11_kit_uri_free(u);
		return kr_errf(KR_EINPUT, "%s: %s", uri, p11_kit_uri_message(rc));
	}
	*out = u;
	return kr_ok();
}

static void pause_ms(long ms)
{
	struct timespec t = {.tv_sec = ms / 1000, .tv_nsec = ms % 1000 * 1000 * 1000};
	nanosleep(&t, NULL);
}

/* SoftHSM's answers while another process rewrites token.object (see
 * load_and_select) are tried again this many times in all, after 50, 100,
 * 200, ... ms: 1.55 s at most, for the rewriting can come back at once
 * when another process opens the token in a loop (a slow, sanitized build
 * saw three tries in 150 ms fail). Returns 0 when tries are spent. */
#define RACE_TRIES 6

static int try_again(int attempt)
{
	if (attempt >= RACE_TRIES)
		return 0;
	pause_ms(50L << (attempt - 1));
	return 1;
}

static KR_MUST_USE kr_err load_module(const char *uri_module, const char *module,
				      CK_FUNCTION_LIST **out, char *used_path, size_t used_sz)
{
	const char *env = getenv("KEYRITE_PKCS11_MODULE");
	const char *path = uri_module ? uri_module
			   : module   ? module
			   : env      ? env
				      : KR_HSM_DEFAULT_MODULE;
	snprintf(used_path, used_sz, "%s", path);
	KR_ENSURE(path[0] != '/' || access(path, R_OK) == 0, KR_EHSM,
		  "PKCS#11 module %s: not found or not readable", path);
	/* Managed (the default): p11-kit gives each load its own view of the
	 * module, so a root token and a sub-CA token can be open at once. */
	CK_FUNCTION_LIST *fn = p11_kit_module_load(path, 0);
	KR_ENSURE(fn, KR_EHSM, "PKCS#11 module %s: cannot load: %s", path,
		  p11_kit_message() ? p11_kit_message() : "unknown reason");
	/* SoftHSM's C_Initialize fails with a general error when it reads a
	 * token.object that another process is rewriting (at its login, see
	 * load_and_select): tried again, as that lasts milliseconds. */
	CK_RV rv;
	for (int attempt = 1;; attempt++) {
		rv = p11_kit_module_initialize(fn);
		if (rv != CKR_GENERAL_ERROR || !try_again(attempt))
			break;
	}
	if (rv != CKR_OK) {
		p11_kit_module_release(fn);
		return kr_hsm_ck_err(rv, KR_EHSM, "PKCS#11 module %s: C_Initialize failed", path);
	}
	*out = fn;
	return kr_ok();
}

static void unload_module(CK_FUNCTION_LIST *fn)
{
	if (!fn)
		return;
	p11_kit_module_finalize(fn);
	p11_kit_module_release(fn);
}

static void token_info_from(CK_SLOT_ID slot, const CK_TOKEN_INFO *ti, kr_hsm_token_info *out)
{
	memset(out, 0, sizeof *out);
	out->slot = slot;
	fixed_string(ti->label, sizeof ti->label, out->label);
	fixed_string(ti->manufacturerID, sizeof ti->manufacturerID, out->manufacturer);
	fixed_string(ti->model, sizeof ti->model, out->model);
	fixed_string(ti->serialNumber, sizeof ti->serialNumber, out->serial);
	out->initialized = (ti->flags & CKF_TOKEN_INITIALIZED) != 0;
	out->login_required = (ti->flags & CKF_LOGIN_REQUIRED) != 0;
}

static KR_MUST_USE kr_err slot_list(CK_FUNCTION_LIST *fn, CK_SLOT_ID **slots, CK_ULONG *n)
{
	KR_CK(fn->C_GetSlotList(CK_TRUE, NULL, n), KR_EHSM, "C_GetSlotList");
	*slots = calloc(*n ? *n : 1, sizeof **slots);
	KR_ENSURE(*slots, KR_EINTERNAL, "out of memory");
	CK_RV rv = fn->C_GetSlotList(CK_TRUE, *slots, n);
	if (rv != CKR_OK) {
		free(*slots);
		*slots = NULL;
		return kr_hsm_ck_err(rv, KR_EHSM, "C_GetSlotList");
	}
	return kr_ok();
}

/* Exactly one initialized token in fn must match uri; *matches says how
 * many did once the slots are listed. */
static KR_MUST_USE kr_err select_token(CK_FUNCTION_LIST *fn, P11KitUri *u, const char *uri,
				       const char *module, kr_hsm_token_info *out, int *matches)
{
	CK_INFO mi;
	KR_CK(fn->C_GetInfo(&mi), KR_EHSM, "C_GetInfo");
	KR_ENSURE(p11_kit_uri_match_module_info(u, &mi), KR_EHSM,
		  "%s: the library-* attributes do not match module %s", uri, module);

	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	KR_TRY(slot_list(fn, &slots, &n));
	*matches = 0;
	char seen[512] = "";
	for (CK_ULONG i = 0; i < n; i++) {
		CK_TOKEN_INFO ti;
		CK_SLOT_INFO si;
		if (fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK ||
		    fn->C_GetSlotInfo(slots[i], &si) != CKR_OK)
			continue;
		kr_hsm_token_info info;
		token_info_from(slots[i], &ti, &info);
		if (!info.initialized)
			continue;
		size_t used = strlen(seen);
		snprintf(seen + used, sizeof seen - used, "%s'%s'", used ? ", " : "", info.label);
		CK_SLOT_ID want = p11_kit_uri_get_slot_id(u);
		if (!p11_kit_uri_match_token_info(u, &ti) || !p11_kit_uri_match_slot_info(u, &si) ||
		    (want != (CK_SLOT_ID)-1 && want != slots[i]))
			continue;
		if ((*matches)++ == 0)
			*out = info;
	}
	free(slots);
	KR_ENSURE(*matches > 0, KR_EHSM, "%s: no token matches in module %s (tokens present: %s)",
		  uri, module, seen[0] ? seen : "none");
	KR_ENSURE(*matches == 1, KR_EHSM,
		  "%s: %d tokens match; add token= or serial= to pick one (present: %s)", uri,
		  *matches, seen);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_session_open(kr_hsm *h, kr_hsm_session **out)
{
	kr_hsm_session *s = calloc(1, sizeof *s);
	KR_ENSURE(s, KR_EINTERNAL, "out of memory");
	s->h = h;
	CK_RV rv = h->fn->C_OpenSession(h->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
					&s->handle);
	if (rv != CKR_OK) {
		free(s);
		return kr_hsm_ck_err(rv, KR_EHSM, "token '%s': C_OpenSession", h->token.label);
	}
	*out = s;
	return kr_ok();
}

void kr_hsm_session_close(kr_hsm_session *s)
{
	if (!s)
		return;
	s->h->fn->C_CloseSession(s->handle);
	free(s);
}

kr_hsm_session *kr_hsm_main_session(kr_hsm *h) { return h->main; }

struct kr_hsm_pool {
	int n;
	kr_hsm_session *s[KR_PARALLEL_MAX];
};

KR_MUST_USE kr_err kr_hsm_pool_open(kr_hsm *h, int n, kr_hsm_pool **out)
{
	kr_hsm_pool *p = calloc(1, sizeof *p);
	KR_ENSURE(p, KR_EINTERNAL, "out of memory");
	int want = n < 1 ? 1 : n > KR_PARALLEL_MAX ? KR_PARALLEL_MAX : n;
	kr_err e = kr_ok();
	while (p->n < want && !kr_failed(&e)) {
		e = kr_hsm_session_open(h, &p->s[p->n]);
		p->n += !kr_failed(&e);
	}
	if (kr_failed(&e)) {
		kr_hsm_pool_close(p);
		return e;
	}
	*out = p;
	return kr_ok();
}

int kr_hsm_pool_size(const kr_hsm_pool *p) { return p->n; }

kr_hsm_session *kr_hsm_pool_session(const kr_hsm_pool *p, int worker) { return p->s[worker]; }

void kr_hsm_pool_close(kr_hsm_pool *p)
{
	if (!p)
		return;
	for (int i = 0; i < p->n; i++)
		kr_hsm_session_close(p->s[i]);
	free(p);
}

/* In a rehearsal only the token label carries over from the real URI: the
 * throwaway tokens have their own serials, model and module. */
static void rehearsal_match(P11KitUri *u)
{
	CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
	memset(ti->manufacturerID, 0, sizeof ti->manufacturerID);
	memset(ti->model, 0, sizeof ti->model);
	memset(ti->serialNumber, 0, sizeof ti->serialNumber);
	CK_INFO *mi = p11_kit_uri_get_module_info(u);
	memset(mi->manufacturerID, 0, sizeof mi->manufacturerID);
	memset(mi->libraryDescription, 0, sizeof mi->libraryDescription);
	mi->libraryVersion.major = mi->libraryVersion.minor = (CK_BYTE)-1; /* p11-kit: unset */
	memset(p11_kit_uri_get_slot_info(u), 0, sizeof(CK_SLOT_INFO));
	p11_kit_uri_set_slot_id(u, (CK_SLOT_ID)-1);
}

KR_MUST_USE kr_err kr_hsm_uri_token_label(const char *uri, char out[33])
{
	P11KitUri *u = NULL;
	KR_TRY(kr_hsm_uri_parse(uri, &u));
	CK_TOKEN_INFO *ti = p11_kit_uri_get_token_info(u);
	fixed_string(ti->label, sizeof ti->label, out);
	p11_kit_uri_free(u);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_uri_token_only(const char *uri)
{
	P11KitUri *u = NULL;
	KR_TRY(kr_hsm_uri_parse(uri, &u));
	int names = p11_kit_uri_get_attribute(u, CKA_LABEL) || p11_kit_uri_get_attribute(u, CKA_ID);
	p11_kit_uri_free(u);
	KR_ENSURE(!names, KR_EINPUT, "%s: name the token only (no object= or id=)", uri);
	return kr_ok();
}

static void close_hsmp(kr_hsm **h) { kr_hsm_close(*h); }

/* SoftHSM rewrites a token's token.object at every successful login (its
 * PIN counters); a C_Initialize in another process at that instant fails
 * the token's integrity check and leaves the token out of the slot list
 * (SoftHSMv2 issue 757). A token that is really absent stays absent, so a
 * missing one is looked for again, with a fresh C_Initialize (try_again). */
static KR_MUST_USE kr_err load_and_select(kr_hsm *h, P11KitUri *u, const char *uri,
					  const char *uri_module, const char *module)
{
	char used[1024];
	for (int attempt = 1;; attempt++) {
		KR_TRY(load_module(uri_module, module, &h->fn, used, sizeof used));
		int matches = -1;
		kr_err e = select_token(h->fn, u, uri, used, &h->token, &matches);
		if (!kr_failed(&e) || matches != 0)
			return e;
		unload_module(h->fn);
		h->fn = NULL;
		if (!try_again(attempt))
			return e;
	}
}

/* The module loaded, the token selected and a session open on it. */
static KR_MUST_USE kr_err open_token(kr_hsm *h, P11KitUri *u, const char *uri, const kr_hsm_opts *o)
{
	const char *uri_module = o->rehearsal ? NULL : p11_kit_uri_get_module_path(u);
	KR_TRY(load_and_select(h, u, uri, uri_module, o->module));
	h->slot = h->token.slot;
	return kr_hsm_session_open(h, &h->main);
}

static void close_token(kr_hsm *h)
{
	kr_hsm_session_close(h->main);
	h->main = NULL;
	unload_module(h->fn);
	h->fn = NULL;
}

/* C_Login with the PIN; *rv is the token's last answer. A wrong PIN is
 * tried once only: a retry loop could run down the token's PIN counter
 * and lock it in the middle of a ceremony. A general error and "PIN not
 * initialized" are tried again: SoftHSM gives them, before it compares the
 * PIN, when its C_Initialize read a token.object that another process was
 * rewriting (see load_and_select). It keeps the PINs it read then, so a
 * second C_Login alone fails the same way: the token is opened afresh. */
static KR_MUST_USE kr_err try_login(kr_hsm *h, P11KitUri *u, const char *uri, const kr_hsm_opts *o,
				    const char *pin, CK_RV *rv)
{
	for (int attempt = 1;; attempt++) {
		*rv = h->fn->C_Login(h->main->handle, CKU_USER, (CK_UTF8CHAR *)pin, strlen(pin));
		if ((*rv != CKR_GENERAL_ERROR && *rv != CKR_USER_PIN_NOT_INITIALIZED) ||
		    !try_again(attempt))
			return kr_ok();
		close_token(h);
		KR_TRY(open_token(h, u, uri, o));
	}
}

/* The token's refusal, with what it says of the PIN counter. */
static KR_MUST_USE kr_err login_refused(kr_hsm *h, const char *what, CK_RV rv)
{
	CK_TOKEN_INFO ti;
	const char *count = "";
	if (h->fn->C_GetTokenInfo(h->slot, &ti) == CKR_OK) {
		if (ti.flags & CKF_USER_PIN_LOCKED)
			count = "; the user PIN is now locked";
		else if (ti.flags & CKF_USER_PIN_FINAL_TRY)
			count = "; one more wrong PIN will lock the token";
		else if (ti.flags & CKF_USER_PIN_COUNT_LOW)
			count = "; the token reports few tries left";
	}
	if (rv == CKR_PIN_INCORRECT)
		return kr_errf(KR_EHSM, "%s: wrong PIN (keyrite does not retry)%s", what, count);
	return kr_hsm_ck_err(rv, KR_EHSM, "%s: login failed%s", what, count);
}

static KR_MUST_USE kr_err login(kr_hsm *h, P11KitUri *u, const char *uri, const kr_hsm_opts *o)
{
	const char *uri_source = o->rehearsal ? NULL : p11_kit_uri_get_pin_source(u);
	char what[128];
	snprintf(what, sizeof what, "token '%s'", h->token.label);
	char buf[256];
	CK_RV rv = CKR_OK;
	kr_err e = kr_hsm_pin_read(uri_source, &o->pin, what, buf, sizeof buf);
	if (!kr_failed(&e))
		e = try_login(h, u, uri, o, buf, &rv);
	OPENSSL_cleanse(buf, sizeof buf);
	KR_TRY(e);
	if (rv == CKR_OK || rv == CKR_USER_ALREADY_LOGGED_IN)
		return kr_ok();
	return login_refused(h, what, rv);
}

/* clang-analyzer does not model cleanup attributes and would report h as
 * leaked on every early return; LeakSanitizer covers this path in make check. */
// NOLINTBEGIN(clang-analyzer-unix.Malloc)
static KR_MUST_USE kr_err open_matching(P11KitUri *u, const char *uri, const kr_hsm_opts *o,
					kr_hsm **out)
{
	__attribute__((cleanup(close_hsmp))) kr_hsm *h = calloc(1, sizeof *h);

	KR_ENSURE(h, KR_EINTERNAL, "out of memory");
	KR_TRY(open_token(h, u, uri, o));
	KR_TRY(login(h, u, uri, o));
	*out = h;
	h = NULL;
	return kr_ok();
}
// NOLINTEND(clang-analyzer-unix.Malloc)

KR_MUST_USE kr_err kr_hsm_open(const char *uri, const kr_hsm_opts *opts, kr_hsm **out)
{
	static const kr_hsm_opts none;
	const kr_hsm_opts *o = opts ? opts : &none;
	P11KitUri *u = NULL;
	KR_TRY(kr_hsm_uri_parse(uri, &u));
	if (o->rehearsal)
		rehearsal_match(u);
	kr_err e = open_matching(u, uri, o, out);
	p11_kit_uri_free(u);
	return e;
}

void kr_hsm_close(kr_hsm *h)
{
	if (!h)
		return;
	/* No C_Logout: login state belongs to the whole process, and another
	 * handle on the same token may still be working. Closing the last
	 * session ends the login (PKCS#11 2.40 section 5.6). */
	close_token(h);
	free(h);
}

const kr_hsm_token_info *kr_hsm_token(const kr_hsm *h) { return &h->token; }

KR_MUST_USE kr_err kr_hsm_random(kr_hsm *h, uint8_t *buf, size_t len)
{
	KR_CK(h->fn->C_GenerateRandom(h->main->handle, buf, len), KR_EHSM,
	      "token '%s': C_GenerateRandom", h->token.label);
	return kr_ok();
}

KR_MUST_USE kr_err kr_hsm_tokens(const char *module, kr_hsm_token_cb cb, void *arg)
{
	CK_FUNCTION_LIST *fn = NULL;
	char used[1024];
	KR_TRY(load_module(NULL, module, &fn, used, sizeof used));
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	kr_err e = slot_list(fn, &slots, &n);
	for (CK_ULONG i = 0; !kr_failed(&e) && i < n; i++) {
		CK_TOKEN_INFO ti;
		if (fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		kr_hsm_token_info info;
		token_info_from(slots[i], &ti, &info);
		cb(&info, arg);
	}
	free(slots);
	unload_module(fn);
	return e;
}

static KR_MUST_USE kr_err init_pin(CK_FUNCTION_LIST *fn, CK_SLOT_ID slot, const char *so,
				   const char *user)
{
	CK_SESSION_HANDLE s;
	KR_CK(fn->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), KR_EHSM,
	      "C_OpenSession");
	CK_RV rv = fn->C_Login(s, CKU_SO, (CK_UTF8CHAR *)so, strlen(so));
	if (rv == CKR_OK) {
		rv = fn->C_InitPIN(s, (CK_UTF8CHAR *)user, strlen(user));
		fn->C_Logout(s);
	}
	fn->C_CloseSession(s);
	KR_CK(rv, KR_EHSM, "setting the user PIN");
	return kr_ok();
}

static KR_MUST_USE kr_err init_token(CK_FUNCTION_LIST *fn, const char *label, const char *so,
				     const char *user)
{
	KR_ENSURE(strlen(label) > 0 && strlen(label) <= 32, KR_EINPUT,
		  "token label '%s': must be 1 to 32 bytes", label);
	CK_SLOT_ID *slots = NULL;
	CK_ULONG n = 0;
	KR_TRY(slot_list(fn, &slots, &n));
	CK_SLOT_ID slot = 0;
	int found = 0;
	for (CK_ULONG i = 0; i < n && !found; i++) {
		CK_TOKEN_INFO ti;
		if (fn->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		char have[33];
		fixed_string(ti.label, sizeof ti.label, have);
		if ((ti.flags & CKF_TOKEN_INITIALIZED) && strcmp(have, label) == 0) {
			free(slots);
			return kr_errf(KR_EEXIST, "a token labelled '%s' already exists", label);
		}
		if (!(ti.flags & CKF_TOKEN_INITIALIZED)) {
			slot = slots[i];
			found = 1;
		}
	}
	free(slots);
	KR_ENSURE(found, KR_EHSM, "no uninitialized token to initialize as '%s'", label);
	/* CK_TOKEN_INFO's label: 32 bytes padded with blanks, not terminated. */
	unsigned char padded[32];
	memset(padded, ' ', sizeof padded);
	memcpy(padded, label, strlen(label)); // NOLINT(bugprone-not-null-terminated-result)
	KR_CK(fn->C_InitToken(slot, (CK_UTF8CHAR *)so, strlen(so), padded), KR_EHSM,
	      "C_InitToken '%s'", label);
	return init_pin(fn, slot, so, user);
}

KR_MUST_USE kr_err kr_hsm_init_token(const char *module, const char *label,
				     const kr_pin_source *so_pin, const kr_pin_source *user_pin)
{
	char so[256], user[256];
	kr_err e = kr_hsm_pin_read(NULL, so_pin, "new token's security officer", so, sizeof so);
	if (!kr_failed(&e))
		e = kr_hsm_pin_read(NULL, user_pin, "new token's user", user, sizeof user);
	CK_FUNCTION_LIST *fn = NULL;
	char used[1024];
	if (!kr_failed(&e))
		e = load_module(NULL, module, &fn, used, sizeof used);
	if (!kr_failed(&e))
		e = init_token(fn, label, so, user);
	OPENSSL_cleanse(so, sizeof so);
	OPENSSL_cleanse(user, sizeof user);
	unload_module(fn);
	return e;
}
