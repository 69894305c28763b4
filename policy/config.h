/* The CA configuration (keyrite-ca(5)), kr_config: the store, the issuing
 * CAs, the certificate profiles each may issue, the firmware signers and
 * the zones, each section checked strictly as it is read (on util/nconf.h);
 * and the rules for the names in it (DNS names, device ids). */
#ifndef KR_POLICY_CONFIG_H
#define KR_POLICY_CONFIG_H

#include "../crypto/keys.h"
#include "../util/err.h"

#include <limits.h>
#include <openssl/conf.h>
#include <stdint.h>

#define KR_MAX_LIST 16

/* Where a certificate's names come from. */
typedef enum kr_identity {
	KR_ID_DEVICE, /* a registered device: CN and SAN dNSName from the name template */
	KR_ID_DNS,    /* SAN dNSNames from the CSR, within the permitted domains */
	KR_ID_CN,     /* the CSR's common name, no SAN (firmware signers) */
} kr_identity;

typedef struct kr_profile {
	char name[64];
	kr_identity identity;
	char name_template[256], zone[254], organization[65];
	char permitted[KR_MAX_LIST][254];
	int npermitted, max_names;
	unsigned key_types; /* bit per kr_key_type */
	long validity_days;
	char extensions[64];       /* section in x509v3_config(5) syntax */
	int honour_ku, honour_eku; /* copy these from the CSR if the profile has none */
} kr_profile;

typedef struct kr_ca_conf {
	char name[64];
	char certificate[PATH_MAX], chain[PATH_MAX], uri[1024];
	char pin_file[PATH_MAX], pin_env[64];
	int rsa_pss, workers;
	long crl_days;
	char profiles[KR_MAX_LIST][64];
	int nprofiles;
} kr_ca_conf;

/* A firmware signer: a key on a token and its code-signing certificate,
 * issued by one of the file's CAs (whose certificate and chain complete it). */
typedef struct kr_signer_conf {
	char name[64], ca[64];
	char certificate[PATH_MAX], uri[1024];
	char pin_file[PATH_MAX], pin_env[64];
	int workers; /* images signed side by side, a session each */
	/* what its CMS packages are (RFC 4108): a package identifier and the
	 * hardware module types they are for, dotted OIDs; "" and 0 if unset */
	char package[64];
	char hardware[KR_MAX_LIST][64];
	int nhardware;
} kr_signer_conf;

/* A zone keyrite publishes (keyrite publish): what goes in it and how. */
typedef struct kr_zone_conf {
	char name[64];
	char apex[254];
	long ttl, server_port;
	int device_full;    /* device TLSA 3 0 0 (full certificate) instead of 3 1 1 */
	int cert_records;   /* also RFC 4398 CERT at <profile id>.<device id>.<zone> */
	int rootcert;       /* publish the roots as _rootcert TLSA */
	int rootcert_usage; /* 2 0 0 (RFC 7671) or 0 0 0 */
	char ca_host[254];  /* _rootcert.<ca_host>; default device.<zone> */
	char soa_mname[254], soa_rname[254];
	char ns[KR_MAX_LIST][254];
	char ns_addr[KR_MAX_LIST][46]; /* glue for a name server inside the zone */
	int nns;
	char ksk_uri[1024], zsk_uri[1024];
	char pin_file[PATH_MAX], pin_env[64];
	int nsec3;
} kr_zone_conf;

/* A registry account (keyrite registry --as NAME). */
typedef enum kr_account_kind {
	KR_ACCOUNT_OPERATOR, /* the registry operator's console */
	KR_ACCOUNT_OWNER,    /* a device owner (a city) */
	KR_ACCOUNT_ASP,      /* an application service provider */
	KR_ACCOUNT_MNO,      /* a mobile network operator */
} kr_account_kind;

typedef struct kr_account_conf {
	char name[64];
	kr_account_kind kind;
	/* an ASP's service, for the registry payload: where devices connect */
	char endpoint[254], protocol[16];
	long port;
	char server_certificate[PATH_MAX]; /* its TLS server certificate, or "" */
} kr_account_conf;

/* The online service (keyrite serve): the section [registry] serve names. */
typedef struct kr_serve_conf {
	char address[64];
	long port;
	/* its TLS server certificate (and chain), and its key: a PEM file, or
	 * a key on a token (key_uri, with pin_file or pin_env) */
	char certificate[PATH_MAX], key[PATH_MAX], key_uri[1024];
	char pin_file[PATH_MAX], pin_env[64];
	int tls12;              /* TLS 1.2 allowed beside 1.3 */
	long threads;           /* connection threads */
	long max_body;          /* octets a request may carry */
	long max_headers;       /* header lines a request may carry */
	long timeout;           /* seconds a request may take to arrive, or a connection idle */
	long rate, burst;       /* requests a second an account may make, and its burst */
	long batch;             /* enrollments recorded per transaction, at most */
	char console[PATH_MAX]; /* the web console's files (docs/console.md); "" for none */
	char dns[80];           /* the DNS server a device's records are checked at; "" */
} kr_serve_conf;

/* The device registry (keyrite registry): [registry] in the file. */
typedef struct kr_registry_conf {
	char ca[64], profile[64]; /* who issues device profiles, under which profile */
	long code_days;           /* an auth code expires after */
	long code_attempts;       /* wrong codes before the device locks against transfer */
	long transfer_days;       /* a transfer approves itself after; 0: at once */
	long grace_days;          /* pendingDelete before a purge may happen */
	/* the registry payload's signing key and certificate (and chain) */
	char payload_uri[1024], payload_certificate[PATH_MAX];
	char pin_file[PATH_MAX], pin_env[64];
	/* the registry zone's DNSSEC trust anchor: DS records, as publish --sign
	 * prints them, for the payload */
	char trust_anchors[2][512];
	int ntrust_anchors;
	kr_account_conf accounts[KR_MAX_LIST + 1]; /* the operator first */
	int naccounts;
	char client_profile[64]; /* the service's client certificates; "" if none */
	/* the AES key on the CA's token that devices' enrollment secrets (CMP
	 * PBM) derive from; "" if none */
	char enrollment_key[256];
	int has_serve;
	kr_serve_conf serve;
} kr_registry_conf;

typedef struct kr_config kr_config;

/* Checks the whole file: unknown keys and sections, bad templates, unknown
 * extensions, profiles a CA names but the file lacks. Paths are made
 * relative to the file's directory. */
KR_MUST_USE kr_err kr_config_load(const char *path, kr_config **out);
void kr_config_free(kr_config *c);

const char *kr_config_store(const kr_config *c);
/* [keyrite] node: this signing node's number, 1 to KR_CONFIG_NODE_MAX (0
 * when there is one). The limit is the serial's: ca/serial.h gives the
 * node 14 bits. */
#define KR_CONFIG_NODE_MAX 16383
int kr_config_node(const kr_config *c);
CONF *kr_config_nconf(kr_config *c);
KR_MUST_USE kr_err kr_config_ca(const kr_config *c, const char *name, const kr_ca_conf **out);
KR_MUST_USE kr_err kr_config_signer(const kr_config *c, const char *name,
				    const kr_signer_conf **out);
/* The zone whose apex is name (case and a final dot do not matter). */
KR_MUST_USE kr_err kr_config_zone(const kr_config *c, const char *apex, const kr_zone_conf **out);
/* The profile of that name, whichever CA issues it; NULL if none. */
const kr_profile *kr_config_profile_named(const kr_config *c, const char *name);
/* The registry section; KR_EINPUT if the file has none. */
KR_MUST_USE kr_err kr_config_registry(const kr_config *c, const kr_registry_conf **out);
/* The registry account of that name ("operator" is always one). */
KR_MUST_USE kr_err kr_config_account(const kr_registry_conf *r, const char *name,
				     const kr_account_conf **out);
/* Every CA of the file, for publication. */
int kr_config_ncas(const kr_config *c);
const kr_ca_conf *kr_config_ca_at(const kr_config *c, int i);
/* The profile, if the CA may issue it. */
KR_MUST_USE kr_err kr_config_profile(const kr_config *c, const kr_ca_conf *ca, const char *name,
				     const kr_profile **out);

/* Expands the profile's name template for a device; checks the result is a
 * DNS name. */
KR_MUST_USE kr_err kr_profile_device_name(const kr_profile *p, const char *device_id,
					  int64_t profile_id, char *out, size_t outsz);

/* A device id: 1 to 63 letters, digits or hyphens (it becomes a DNS label). */
KR_MUST_USE kr_err kr_device_id_check(const char *id);

/* RFC 1035 preferred syntax, plus a leading underscore in a label
 * (draft-ietf-dance-client-auth: <device>._device.<domain>). */
KR_MUST_USE kr_err kr_dns_name_check(const char *name);

/* 1 if name is domain or below it (case-insensitive). */
int kr_dns_name_within(const char *name, const char *domain);

/* A DNS name from a CSR: syntax, no wildcard, inside a permitted domain;
 * the error says why not. */
KR_MUST_USE kr_err kr_profile_permits(const kr_profile *p, const char *dns);

/* The request's key type is one the profile allows. */
KR_MUST_USE kr_err kr_profile_key_check(const kr_profile *p, kr_key_type t);

/* What a request says about its subject. */
typedef struct kr_request_names {
	const char *cn;   /* the CSR's common name; "" when it has none */
	char *const *dns; /* the DNS names it requests */
	int ndns;
	char *const *other; /* the other names it requests, printed */
	int nother;
	const char *device_id; /* from a manifest, or NULL */
} kr_request_names;

/* The identity the profile gives a request. Every name the request asks for
 * must be one the profile issues, or the request is refused ("SAN not
 * permitted: NAME (why)"): a certificate without a name its request asked
 * for is not the one asked for. device: the device id (the manifest's, else
 * the common name; when both are present they must agree), no requested
 * name, the name waits for the profile id. dns: every requested name
 * permitted, the first is the name. cn: the common name, no requested name. */
KR_MUST_USE kr_err kr_profile_identity(const kr_profile *p, const kr_request_names *r,
				       char *device_id, size_t idsz, char *name, size_t namesz);

#endif
