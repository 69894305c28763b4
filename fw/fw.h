/* Firmware signing for secure FOTA: CMS (RFC 5652 SignedData, RFC 4108
 * firmware packages, RFC 5083 AuthEnvelopedData) and MCUboot images, signed
 * by a key that stays on the token. Images are read in a stream, never whole;
 * only a digest goes to the token, one C_Sign per image. */
#ifndef KR_FW_FW_H
#define KR_FW_FW_H

#include "../hsm/hsm.h"
#include "../store/store.h"
#include "../policy/config.h"

#include <openssl/x509.h>
#include <stdint.h>

typedef struct kr_fw_signer kr_fw_signer;

/* Opens the signer: its certificate must be issued by its CA, be valid now,
 * allow codeSigning, be recorded as valid in the store, and hold the public
 * key of the token's key. */
KR_MUST_USE kr_err kr_fw_signer_open(const kr_config *cfg, const char *name, kr_store *store,
				     const kr_hsm_opts *opts, kr_fw_signer **out);
void kr_fw_signer_close(kr_fw_signer *s);
/* SHA-256 of the signer certificate's DER, for records. */
const uint8_t *kr_fw_signer_fingerprint(const kr_fw_signer *s);

typedef enum kr_fw_format { KR_FW_CMS, KR_FW_MCUBOOT } kr_fw_format;

/* An encryption recipient: a device's certificate (CMS: key agreement;
 * MCUboot: ECIES-P256 to its key) or a bare P-256 public key (MCUboot). */
typedef struct kr_fw_recipient {
	char name[128]; /* in output file names and the record */
	X509 *cert;
	EVP_PKEY *key;
} kr_fw_recipient;

#define KR_FW_MAX_RECIPIENTS 64
#define KR_FW_MAX_HARDWARE 16

typedef struct kr_mcuboot_version {
	uint8_t major, minor;
	uint16_t revision;
	uint32_t build;
} kr_mcuboot_version;

typedef struct kr_fw_opts {
	kr_fw_format format;
	int embed; /* CMS: encapsulate the package instead of a detached signature */
	const char *out_dir;
	/* MCUboot, raw binary input: the header keyrite writes, as imgtool
	 * does for the same options: into the header_size zero bytes the image
	 * begins with (Zephyr's zephyr.bin), or, with pad_header, in front of
	 * it, over header_size bytes of erased_val. A load address other than
	 * 0 sets IMAGE_F_RAM_LOAD. */
	int raw, pad_header;
	uint8_t erased_val;
	uint32_t load_addr;
	uint16_t header_size;
	kr_mcuboot_version version;
	kr_fw_recipient recipients[KR_FW_MAX_RECIPIENTS];
	int nrecipients;
	const char *keks[KR_FW_MAX_RECIPIENTS]; /* CMS: AES keys on the token, by label */
	int nkeks;
	/* CMS: the package's identity (RFC 4108 2.2.5, 2.2.8), in its signed
	 * attributes. package and hardware default to the signer's
	 * configuration; a version must be given. */
	const char *package; /* fwPkgID, a dotted OID */
	int64_t package_version;
	int has_version;
	const char *hardware[KR_FW_MAX_HARDWARE]; /* target hardware module types, OIDs */
	int nhardware;
	/* CMS encryption: the AuthEnvelopedData form (RFC 5083) to device
	 * certificates and key-wrap keys, which is not RFC 4108's. */
	int authenveloped;
} kr_fw_opts;

/* Adds a recipient to o: a PEM certificate, or a bare PEM public key
 * (MCUboot's device-class key), named by the file (classa.pub.pem: classa);
 * or a device's newest valid certificate in the store, named by its id.
 * kr_fw_recipients_free frees what they added. */
KR_MUST_USE kr_err kr_fw_recipient_file(kr_fw_opts *o, const char *path);
KR_MUST_USE kr_err kr_fw_recipient_device(kr_fw_opts *o, kr_store *store, const char *id);
void kr_fw_recipients_free(kr_fw_opts *o);

typedef struct kr_fw_result {
	uint64_t size;
	uint8_t sha256[32];
	char outputs[4096]; /* comma-separated */
} kr_fw_result;

/* A run of images signed with one signer and one set of options, a chunk
 * of up to KR_FW_CHUNK images at a time: the chunk's images are signed side
 * by side on the signer's workers (a token session each), their outputs
 * written unnamed; then the chunk is recorded in the store and the audit
 * log in one transaction, the file system is synced once, and only then
 * are the outputs given their names and the images reported, in the order
 * they were added. So a record exists for every output that appears, a
 * killed run leaves no partial file, and the cost of syncing is paid per
 * chunk, not per image. */
#define KR_FW_CHUNK 64

typedef struct kr_fw_batch kr_fw_batch;

/* Called once per image reported: e is NULL when its outputs are in place.
 * Called with image and r NULL for a failure that is not an image's own and
 * ends the run (the store cannot record a chunk, the output directory cannot
 * be synced): the images it left without outputs are not reported. */
typedef void (*kr_fw_report_cb)(const char *image, const kr_fw_result *r, const kr_err *e,
				void *arg);

KR_MUST_USE kr_err kr_fw_batch_new(kr_fw_signer *s, kr_store *store, const kr_fw_opts *o,
				   kr_fw_report_cb cb, void *arg, kr_fw_batch **out);
/* Adds an image to the chunk, which is signed (and encrypted) when full.
 * An image's own failure goes to the callback and leaves nothing; the
 * return value is an error only when the run cannot go on (the token, the
 * store, the disk, keyrite itself), after what the callback was told. */
KR_MUST_USE kr_err kr_fw_batch_add(kr_fw_batch *b, const char *image);
/* Records and publishes what is pending, then signs a checkpoint of the
 * audit chain with the signer's key. */
KR_MUST_USE kr_err kr_fw_batch_finish(kr_fw_batch *b);
/* Anything not finished is abandoned: no record, no file. */
void kr_fw_batch_free(kr_fw_batch *b);

/* Parses "MAJOR.MINOR.REVISION+BUILD" (the last two optional). */
KR_MUST_USE kr_err kr_mcuboot_version_parse(const char *text, kr_mcuboot_version *out);

typedef struct kr_fw_verify_opts {
	kr_fw_format format;
	const char *root;           /* trust anchor (PEM) */
	const char *content;        /* CMS detached: the image */
	const char *cert;           /* MCUboot: the signer certificate, with its chain after it */
	const char *expect_version; /* the header's (MCUboot) or the package's (CMS) version */
	const char *package;        /* CMS: the package identifier must be this OID */
	const char *hardware;       /* CMS: the package must be for this hardware type OID */
} kr_fw_verify_opts;

/* Checks a signed image: signature, the chain to the root, code signing.
 * KR_EVERIFY with the reason when it does not hold. */
KR_MUST_USE kr_err kr_fw_verify(const kr_fw_verify_opts *o, const char *file, char *summary,
				size_t sumsz);

#endif
