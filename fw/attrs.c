/* The signed attributes that make a CMS SignedData an RFC 4108 firmware
 * package (section 2.2): besides content-type and message-digest, the
 * signer MUST include the firmware-package-identifier (2.2.3) and the
 * target-hardware-module-identifiers (2.2.4), and over an encrypted package
 * the decrypt-key-identifier (2.2.5) that names the key to decrypt it. */
#include "internal.h"
#include "../util/cleanup.h"
#include "../util/text.h"

#include <openssl/asn1t.h>
#include <openssl/cms.h>
#include <stdio.h>
#include <string.h>

/* RFC 4108 (Appendix A, with erratum 4093) firmware package attributes.
 * FirmwarePackageIdentifier, section 2.2.3: a name, preferred as the
 * package's OID and a version number, or a legacy octet string; and
 * optionally the stale version below which a device refuses the package. */
typedef struct kr_fwpkg_preferred_st {
	ASN1_OBJECT *id;
	ASN1_INTEGER *version;
} KR_FWPKG_PREFERRED;

typedef struct kr_fwpkg_name_st {
	int type; /* 0 preferred, 1 legacy */
	union {
		KR_FWPKG_PREFERRED *preferred;
		ASN1_OCTET_STRING *legacy;
	} d;
} KR_FWPKG_NAME;

typedef struct kr_fwpkg_stale_st {
	int type;
	union {
		ASN1_INTEGER *preferred;
		ASN1_OCTET_STRING *legacy;
	} d;
} KR_FWPKG_STALE;

typedef struct kr_fwpkg_id_st {
	KR_FWPKG_NAME *name;
	KR_FWPKG_STALE *stale; /* OPTIONAL */
} KR_FWPKG_ID;

/* TargetHardwareIdentifiers, section 2.2.4: SEQUENCE OF OBJECT IDENTIFIER. */
typedef STACK_OF(ASN1_OBJECT) KR_HW_IDS;

/* Their templates are at the end of the file. */
static const ASN1_ITEM *KR_FWPKG_ID_it(void);
static const ASN1_ITEM *KR_HW_IDS_it(void);
static const ASN1_ITEM *KR_FWPKG_PREFERRED_it(void);

#define OID_PACKAGE_ID "1.2.840.113549.1.9.16.2.35"     /* id-aa-firmwarePackageID */
#define OID_HARDWARE_IDS "1.2.840.113549.1.9.16.2.36"   /* id-aa-targetHardwareIDs */
#define OID_DECRYPT_KEY_ID "1.2.840.113549.1.9.16.2.37" /* id-aa-decryptKeyID */

static void free_package(KR_FWPKG_ID **p)
{
	ASN1_item_free((ASN1_VALUE *)*p, ASN1_ITEM_rptr(KR_FWPKG_ID));
}
static void free_hardware(KR_HW_IDS **p) { sk_ASN1_OBJECT_pop_free(*p, ASN1_OBJECT_free); }

KR_MUST_USE kr_err kr_fw_oid_check(const char *what, const char *oid)
{
	KR_AUTO(ASN1_OBJECT) o = OBJ_txt2obj(oid, 1);
	ERR_clear_error();
	KR_ENSURE(o, KR_EUSAGE, "%s '%s': not an object identifier (dotted numbers)", what, oid);
	return kr_ok();
}

/* ---- signing --------------------------------------------------------------------- */

static KR_MUST_USE kr_err add_encoded(CMS_SignerInfo *si, const char *oid, int type,
				      const uint8_t *v, int len)
{
	KR_AUTO(ASN1_OBJECT) obj = OBJ_txt2obj(oid, 1);
	KR_OSSL(len > 0 && obj && CMS_signed_add1_attr_by_OBJ(si, obj, type, v, len), KR_EINTERNAL,
		"CMS signed attribute %s", oid);
	return kr_ok();
}

/* Added as its DER: an ASN1_TYPE of type SEQUENCE holds the whole encoding. */
static KR_MUST_USE kr_err add_item(CMS_SignerInfo *si, const char *oid, const ASN1_ITEM *it,
				   const void *value)
{
	KR_AUTO(uint8_t) der = NULL;
	int len = ASN1_item_i2d((const ASN1_VALUE *)value, &der, it);
	return add_encoded(si, oid, V_ASN1_SEQUENCE, der, len);
}

/* The preferred form: the package's OID and its version number. */
static KR_MUST_USE kr_err add_package(CMS_SignerInfo *si, const kr_fw_opts *o)
{
	__attribute__((cleanup(free_package))) KR_FWPKG_ID *id =
		(KR_FWPKG_ID *)ASN1_item_new(ASN1_ITEM_rptr(KR_FWPKG_ID));
	KR_FWPKG_PREFERRED *p =
		(KR_FWPKG_PREFERRED *)ASN1_item_new(ASN1_ITEM_rptr(KR_FWPKG_PREFERRED));
	if (id && p) {
		id->name->type = 0;
		id->name->d.preferred = p;
	} else {
		ASN1_item_free((ASN1_VALUE *)p, ASN1_ITEM_rptr(KR_FWPKG_PREFERRED));
		p = NULL;
	}
	ASN1_OBJECT *oid = p ? OBJ_txt2obj(o->package, 1) : NULL;
	if (oid) {
		ASN1_OBJECT_free(p->id);
		p->id = oid;
	}
	KR_OSSL(oid && ASN1_INTEGER_set_int64(p->version, o->package_version), KR_EINTERNAL,
		"firmware package identifier");
	return add_item(si, OID_PACKAGE_ID, ASN1_ITEM_rptr(KR_FWPKG_ID), id);
}

static KR_MUST_USE kr_err add_hardware(CMS_SignerInfo *si, const kr_fw_opts *o)
{
	__attribute__((cleanup(free_hardware))) KR_HW_IDS *ids = sk_ASN1_OBJECT_new_null();
	KR_OSSL(ids, KR_EINTERNAL, "out of memory");
	for (int i = 0; i < o->nhardware; i++) {
		ASN1_OBJECT *oid = OBJ_txt2obj(o->hardware[i], 1);
		if (oid && !sk_ASN1_OBJECT_push(ids, oid)) {
			ASN1_OBJECT_free(oid);
			oid = NULL;
		}
		KR_OSSL(oid, KR_EINTERNAL, "target hardware identifier %s", o->hardware[i]);
	}
	return add_item(si, OID_HARDWARE_IDS, ASN1_ITEM_rptr(KR_HW_IDS), ids);
}

KR_MUST_USE kr_err kr_fw_attrs_add(CMS_SignerInfo *si, const kr_fw_opts *o, const uint8_t *keyid,
				   size_t keyidlen)
{
	KR_TRY(add_package(si, o));
	KR_TRY(add_hardware(si, o));
	return keyid ? add_encoded(si, OID_DECRYPT_KEY_ID, V_ASN1_OCTET_STRING, keyid,
				   (int)keyidlen)
		     : kr_ok();
}

/* ---- verification -------------------------------------------------------------------- */

/* The one value of the signed attribute oid, of the given type (NULL if
 * the attribute is absent). */
static KR_MUST_USE kr_err one_value(const char *file, CMS_SignerInfo *si, const char *oid,
				    const char *name, int type, const ASN1_STRING **out)
{
	KR_AUTO(ASN1_OBJECT) obj = OBJ_txt2obj(oid, 1);
	KR_OSSL(obj, KR_EINTERNAL, "OID");
	*out = NULL;
	int at = CMS_signed_get_attr_by_OBJ(si, obj, -1);
	if (at < 0)
		return kr_ok();
	KR_ENSURE(CMS_signed_get_attr_by_OBJ(si, obj, at) < 0, KR_EVERIFY,
		  "%s: the %s attribute is there twice", file, name);
	X509_ATTRIBUTE *attr = CMS_signed_get_attr(si, at);
	ASN1_TYPE *t = X509_ATTRIBUTE_count(attr) == 1 ? X509_ATTRIBUTE_get0_type(attr, 0) : NULL;
	KR_ENSURE(t && t->type == type, KR_EVERIFY, "%s: the %s attribute is not one %s", file,
		  name, type == V_ASN1_SEQUENCE ? "SEQUENCE" : "OCTET STRING");
	*out = t->value.asn1_string;
	return kr_ok();
}

/* v decoded as it, the whole of it (DER admits no trailing bytes). */
static KR_MUST_USE kr_err decode(const char *file, const char *name, const ASN1_STRING *v,
				 const ASN1_ITEM *it, ASN1_VALUE **out)
{
	const uint8_t *p = ASN1_STRING_get0_data(v), *end = p + ASN1_STRING_length(v);
	*out = ASN1_item_d2i(NULL, &p, end - p, it);
	if (*out && p == end)
		return kr_ok();
	ASN1_item_free(*out, it);
	*out = NULL;
	return kr_err_ossl(KR_EVERIFY, "%s: the %s attribute is malformed", file, name);
}

static KR_MUST_USE kr_err check_package(const char *file, const kr_fw_verify_opts *o,
					const KR_FWPKG_ID *id, char *desc, size_t descsz)
{
	if (id->name->type != 0) {
		KR_ENSURE(!o->package && !o->expect_version, KR_EVERIFY,
			  "%s: the package is named by a legacy octet string, not an OID and a "
			  "version",
			  file);
		snprintf(desc, descsz, "package with a legacy identifier");
		return kr_ok();
	}
	const KR_FWPKG_PREFERRED *p = id->name->d.preferred;
	char oid[128];
	int64_t version = -1;
	OBJ_obj2txt(oid, sizeof oid, p->id, 1);
	KR_ENSURE(ASN1_INTEGER_get_int64(&version, p->version) == 1 && version >= 0, KR_EVERIFY,
		  "%s: the package version is not a number from 0 up", file);
	KR_ENSURE(!o->package || strcmp(o->package, oid) == 0, KR_EVERIFY,
		  "%s: package %s, expected %s", file, oid, o->package);
	if (o->expect_version) {
		long long want = -1;
		char *end = NULL;
		want = strtoll(o->expect_version, &end, 10);
		KR_ENSURE(*o->expect_version && !*end && want >= 0, KR_EUSAGE,
			  "--expect-version %s: a CMS package's version is a number",
			  o->expect_version);
		KR_ENSURE(want == version, KR_EVERIFY, "%s: package version %lld, expected %lld",
			  file, (long long)version, want);
	}
	snprintf(desc, descsz, "package %s version %lld", oid, (long long)version);
	return kr_ok();
}

static KR_MUST_USE kr_err check_hardware(const char *file, const kr_fw_verify_opts *o,
					 const KR_HW_IDS *ids, char *desc, size_t descsz)
{
	KR_ENSURE(sk_ASN1_OBJECT_num(ids) > 0, KR_EVERIFY, "%s: the target hardware list is empty",
		  file);
	int found = !o->hardware;
	size_t used = strlen(desc);
	for (int i = 0; i < sk_ASN1_OBJECT_num(ids); i++) {
		char oid[128];
		OBJ_obj2txt(oid, sizeof oid, sk_ASN1_OBJECT_value(ids, i), 1);
		found |= o->hardware && strcmp(oid, o->hardware) == 0;
		if (used < descsz)
			used += (size_t)snprintf(desc + used, descsz - used, "%s%s",
						 i ? ", " : " for ", oid);
	}
	KR_ENSURE(found, KR_EVERIFY, "%s: not for hardware %s", file, o->hardware);
	return kr_ok();
}

KR_MUST_USE kr_err kr_fw_attrs_check(const char *file, CMS_SignerInfo *si,
				     const kr_fw_verify_opts *o, int encrypted, char *desc,
				     size_t descsz)
{
	const ASN1_STRING *pkg = NULL, *hw = NULL, *keyid = NULL;
	KR_TRY(one_value(file, si, OID_PACKAGE_ID, "firmware-package-identifier", V_ASN1_SEQUENCE,
			 &pkg));
	KR_TRY(one_value(file, si, OID_HARDWARE_IDS, "target-hardware-module-identifiers",
			 V_ASN1_SEQUENCE, &hw));
	KR_TRY(one_value(file, si, OID_DECRYPT_KEY_ID, "decrypt-key-identifier",
			 V_ASN1_OCTET_STRING, &keyid));
	KR_ENSURE(pkg && hw, KR_EVERIFY,
		  "%s: not an RFC 4108 firmware package: it lacks the %s signed attribute "
		  "(section 2.2)",
		  file, pkg ? "target-hardware-module-identifiers" : "firmware-package-identifier");
	KR_ENSURE(!encrypted || keyid, KR_EVERIFY,
		  "%s: an encrypted package without a decrypt-key-identifier (RFC 4108 2.2.5)",
		  file);
	__attribute__((cleanup(free_package))) KR_FWPKG_ID *id = NULL;
	__attribute__((cleanup(free_hardware))) KR_HW_IDS *ids = NULL;
	KR_TRY(decode(file, "firmware-package-identifier", pkg, ASN1_ITEM_rptr(KR_FWPKG_ID),
		      (ASN1_VALUE **)&id));
	KR_TRY(decode(file, "target-hardware-module-identifiers", hw, ASN1_ITEM_rptr(KR_HW_IDS),
		      (ASN1_VALUE **)&ids));
	KR_TRY(check_package(file, o, id, desc, descsz));
	KR_TRY(check_hardware(file, o, ids, desc, descsz));
	if (keyid && ASN1_STRING_length(keyid) <= 64) {
		char hex[129];
		kr_hex(ASN1_STRING_get0_data(keyid), (size_t)ASN1_STRING_length(keyid), hex);
		size_t used = strlen(desc);
		snprintf(desc + used, descsz - used, ", decrypt key id %s", hex);
	}
	return kr_ok();
}

/* ---- the templates ---------------------------------------------------------------- */

/* Kept as written: clang-format indents each template under the one before. */
/* clang-format off */
ASN1_ITEM_TEMPLATE(KR_HW_IDS) =
	ASN1_EX_TEMPLATE_TYPE(ASN1_TFLG_SEQUENCE_OF, 0, KR_HW_IDS, ASN1_OBJECT)
static_ASN1_ITEM_TEMPLATE_END(KR_HW_IDS)

ASN1_SEQUENCE(KR_FWPKG_PREFERRED) = {
	ASN1_SIMPLE(KR_FWPKG_PREFERRED, id, ASN1_OBJECT),
	ASN1_SIMPLE(KR_FWPKG_PREFERRED, version, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(KR_FWPKG_PREFERRED)

ASN1_CHOICE(KR_FWPKG_NAME) = {
	ASN1_SIMPLE(KR_FWPKG_NAME, d.preferred, KR_FWPKG_PREFERRED),
	ASN1_SIMPLE(KR_FWPKG_NAME, d.legacy, ASN1_OCTET_STRING),
} static_ASN1_CHOICE_END(KR_FWPKG_NAME)

ASN1_CHOICE(KR_FWPKG_STALE) = {
	ASN1_SIMPLE(KR_FWPKG_STALE, d.preferred, ASN1_INTEGER),
	ASN1_SIMPLE(KR_FWPKG_STALE, d.legacy, ASN1_OCTET_STRING),
} static_ASN1_CHOICE_END(KR_FWPKG_STALE)

ASN1_SEQUENCE(KR_FWPKG_ID) = {
	ASN1_SIMPLE(KR_FWPKG_ID, name, KR_FWPKG_NAME),
	ASN1_OPT(KR_FWPKG_ID, stale, KR_FWPKG_STALE),
} static_ASN1_SEQUENCE_END(KR_FWPKG_ID)
	/* clang-format on */
