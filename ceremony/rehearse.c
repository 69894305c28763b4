/* keyrite ceremony run --dry-run: the whole script, or a day's scripts in
 * order, on throwaway SoftHSM tokens that carry the real tokens' labels, with
 * every output in a scratch directory. */
#include "ceremony.h"
#include "../util/nconf.h"
#include "../util/fs.h"
#include "../util/text.h"

#include <limits.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_TOKENS 16

typedef struct labels {
	char v[MAX_TOKENS][33];
	size_t n;
} labels;

static KR_MUST_USE kr_err push_label(labels *l, const char *label)
{
	for (size_t i = 0; i < l->n; i++)
		if (!strcmp(l->v[i], label))
			return kr_ok();
	KR_ENSURE(l->n < MAX_TOKENS, KR_EINPUT, "too many tokens to rehearse");
	snprintf(l->v[l->n++], sizeof l->v[0], "%s", label);
	return kr_ok();
}

static KR_MUST_USE kr_err add_label(labels *l, const char *uri)
{
	char label[33];
	KR_TRY(kr_hsm_uri_token_label(uri, label));
	KR_ENSURE(label[0], KR_EINPUT, "%s: a rehearsal needs token= in every URI", uri);
	return push_label(l, label);
}

static KR_MUST_USE kr_err add_labels_of(kr_nconf *c, const char *section, labels *l)
{
	const char *uri = kr_nconf_get(c, section, "uri");
	return uri ? add_label(l, uri) : kr_ok();
}

typedef struct listed_labels {
	kr_nconf *c;
	labels *l;
} listed_labels;

static KR_MUST_USE kr_err add_listed(const char *section, void *arg)
{
	listed_labels *x = arg;
	return add_labels_of(x->c, section, x->l);
}

/* The token labels one script names; *restore: it is a restore, whose
 * tokens are new (below). */
static KR_MUST_USE kr_err labels_of(const char *script, labels *l, int *restore)
{
	kr_nconf *c = NULL;
	KR_TRY(kr_nconf_load(script, &c));
	const char *type = kr_nconf_get(c, "ceremony", "type");
	*restore = type && !strcmp(type, "restore");
	kr_err e = add_labels_of(c, "key", l);
	if (!kr_failed(&e))
		e = add_labels_of(c, "issuer", l);
	/* a backup's or a restore's keys are in sections it lists */
	const char *lists[] = {"backup", "restore"};
	listed_labels x = {c, l};
	for (size_t j = 0; j < 2 && !kr_failed(&e); j++) {
		const char *keys = kr_nconf_get(c, lists[j], "keys");
		if (keys)
			e = kr_nconf_each_name(keys, add_listed, &x);
	}
	kr_nconf_free(c);
	return e;
}

static KR_MUST_USE kr_err make_pin(const char *scratch, char *pin_path, size_t sz)
{
	uint8_t rnd[16];
	char pin[33];
	KR_ENSURE(RAND_bytes(rnd, sizeof rnd) == 1, KR_EINTERNAL, "RAND_bytes failed");
	kr_hex(rnd, sizeof rnd, pin);
	KR_TRY(kr_fs_join(scratch, "rehearsal.pin", pin_path, sz));
	return kr_fs_write_new(pin_path, pin, strlen(pin), 0600);
}

/* Throwaway tokens with the labels in scratch/name, SoftHSM pointed at
 * them (it reads its configuration when the module is initialized, and
 * every ceremony initializes it afresh). */
static KR_MUST_USE kr_err make_tokens(const char *scratch, const char *name, const labels *l,
				      const char *pin_path)
{
	char path[PATH_MAX], conf[PATH_MAX + 64];
	KR_TRY(kr_fs_join(scratch, name, path, sizeof path));
	KR_ENSURE(mkdir(path, 0700) == 0, KR_EIO, "%s: cannot create", path);
	int n = snprintf(conf, sizeof conf,
			 "directories.tokendir = %s\nobjectstore.backend = file\n", path);
	char conf_name[64];
	snprintf(conf_name, sizeof conf_name, "softhsm2-%s.conf", name);
	KR_TRY(kr_fs_join(scratch, conf_name, path, sizeof path));
	KR_TRY(kr_fs_write_new(path, conf, (size_t)n, 0600));
	setenv("SOFTHSM2_CONF", path, 1);
	kr_pin_source src = {.file = pin_path};
	for (size_t i = 0; i < l->n; i++)
		KR_TRY(kr_hsm_init_token(KR_HSM_DEFAULT_MODULE, l->v[i], &src, &src));
	return kr_ok();
}

/* Tokens for the scripts up to the first restore; a restore goes onto new
 * tokens of its own, as on the day, and the scripts after it use those. */
static KR_MUST_USE kr_err tokens_for(const char *scratch, char *const *scripts, size_t n, size_t at,
				     const char *pin_path)
{
	labels l = {0};
	int restore = 0;
	char name[32];
	if (at > 0) {
		KR_TRY(labels_of(scripts[at], &l, &restore));
		if (!restore)
			return kr_ok();
		snprintf(name, sizeof name, "tokens-%zu", at + 1);
		return make_tokens(scratch, name, &l, pin_path);
	}
	for (size_t i = 0; i < n; i++) {
		labels one = {0};
		KR_TRY(labels_of(scripts[i], &one, &restore));
		if (restore && i > 0)
			break;
		for (size_t j = 0; j < one.n; j++)
			KR_TRY(push_label(&l, one.v[j]));
	}
	return make_tokens(scratch, "tokens", &l, pin_path);
}

KR_MUST_USE kr_err kr_ceremony_rehearse(char *const *scripts, size_t n, const kr_ceremony_opts *o,
					char *scratch, size_t scratch_sz)
{
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(scratch, scratch_sz, "%s/keyrite-rehearsal.XXXXXX", tmp);
	KR_ENSURE(mkdtemp(scratch), KR_EIO, "%s: cannot create scratch directory", scratch);
	char pin_path[PATH_MAX];
	KR_TRY(make_pin(scratch, pin_path, sizeof pin_path));

	kr_ceremony_opts ro = *o;
	ro.dir = scratch;
	ro.input_dir = o->dir ? o->dir : ".";
	ro.hsm = (kr_hsm_opts){
		.module = KR_HSM_DEFAULT_MODULE, .pin = {.file = pin_path}, .rehearsal = 1};
	for (size_t i = 0; i < n; i++) {
		KR_TRY(tokens_for(scratch, scripts, n, i, pin_path));
		if (o->echo)
			fprintf(o->echo, "\n== rehearsing %s ==\n", scripts[i]);
		kr_err e = kr_ceremony_run(scripts[i], &ro);
		kr_err_prefix(&e, "rehearsal of %s", scripts[i]);
		KR_TRY(e);
	}
	return kr_ok();
}
