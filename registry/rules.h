/* registry/rules: who may do what to a device, in which state. The one
 * place the registry's state machine is written (docs/registry.md prints
 * it as a table; tests/unit/test_registry_rules.c and the end-to-end
 * matrix check it). Pure: no store, no token.
 *
 * States follow EPP (RFC 5730 section 2.9.3.4, RFC 5731 section 2.3,
 * RFC 3915): a device is listed once imported; each ASP's registration of
 * it is registered, then active (a profile with a certificate, records
 * published), deactivated (certificate revoked, records withdrawn, still
 * listed); a deleted device is pendingDelete (restore possible) until it
 * is purged. Beside the state: pendingTransfer (other changes refused,
 * RFC 5731 section 2.3), hold (records withdrawn, certificate kept:
 * clientHold), and the owner's locks (client{Transfer,Delete,Update}
 * Prohibited). */
#ifndef KR_REGISTRY_RULES_H
#define KR_REGISTRY_RULES_H

typedef enum kr_reg_cmd {
	KR_CMD_IMPORT,
	KR_CMD_REGISTER,
	KR_CMD_ACTIVATE,
	KR_CMD_AUTHCODE,
	KR_CMD_SECRET,
	KR_CMD_TRANSFER_REQUEST,
	KR_CMD_TRANSFER_APPROVE,
	KR_CMD_TRANSFER_REJECT,
	KR_CMD_TRANSFER_CANCEL,
	KR_CMD_TRANSFER_QUERY,
	KR_CMD_HOLD,
	KR_CMD_UNHOLD,
	KR_CMD_LOCK,
	KR_CMD_UNLOCK,
	KR_CMD_DEACTIVATE,
	KR_CMD_REACTIVATE,
	KR_CMD_REKEY,
	KR_CMD_DELETE,
	KR_CMD_RESTORE,
	KR_CMD_PURGE,
	KR_CMD_SWITCH_MNO,
	KR_CMD_RESET,
	KR_CMD_SHOW,
	KR_CMD_PAYLOAD,
	KR_NCMDS
} kr_reg_cmd;

/* The acting account's relation to the device (and to the registration
 * the command acts on). */
typedef enum kr_reg_role {
	KR_ROLE_OPERATOR,  /* the registry operator */
	KR_ROLE_OWNER,     /* the device's owner */
	KR_ROLE_MNO,       /* the device's mobile network operator */
	KR_ROLE_SPONSOR,   /* the ASP whose registration it is */
	KR_ROLE_GAINING,   /* the ASP that requested its pending transfer */
	KR_ROLE_OTHER_ASP, /* any other ASP */
	KR_ROLE_STRANGER,  /* an owner or MNO account that is not this device's */
	KR_NROLES
} kr_reg_role;

/* The state a command meets: the registration's, or listed when the
 * acting ASP has none; pendingDelete overrides them; none: no such device. */
typedef enum kr_reg_state {
	KR_ST_NONE,
	KR_ST_LISTED,
	KR_ST_REGISTERED,
	KR_ST_ACTIVE,
	KR_ST_DEACTIVATED,
	KR_ST_PENDING_DELETE,
	KR_NSTATES,
	KR_ST_SAME = KR_NSTATES /* a rule's result: the state does not change */
} kr_reg_state;

/* Beside the state. */
enum {
	KR_FL_PENDING_TRANSFER = 1u << 0,
	KR_FL_HOLD = 1u << 1,
	KR_LOCK_TRANSFER = 1u << 2, /* transferProhibited */
	KR_LOCK_DELETE = 1u << 3,   /* deleteProhibited */
	KR_LOCK_UPDATE = 1u << 4,   /* updateProhibited */
	KR_NFLAGS = 5
};
#define KR_LOCKS (KR_LOCK_TRANSFER | KR_LOCK_DELETE | KR_LOCK_UPDATE)

typedef struct kr_reg_verdict {
	int allowed;
	const char *reason; /* refused: why, a phrase ("the device is on hold") */
	kr_reg_state to;    /* allowed: the state after */
	int revoke_reason;  /* allowed and the profile's certificate is revoked:
			     * its RFC 5280 section 5.3.1 reason code; -1 if not */
} kr_reg_verdict;

kr_reg_verdict kr_reg_decide(kr_reg_cmd cmd, kr_reg_role role, kr_reg_state state, unsigned flags);

/* Names as the CLI, the JSON and the audit log spell them. */
const char *kr_reg_cmd_name(kr_reg_cmd c);
const char *kr_reg_role_name(kr_reg_role r);
const char *kr_reg_state_name(kr_reg_state s);
/* "pendingTransfer", "hold", "transferProhibited", ... for one flag bit. */
const char *kr_reg_flag_name(unsigned flag);
/* A lock's name to its bit: transfer, delete, update (or the EPP names);
 * 0 if unknown. */
unsigned kr_reg_lock_named(const char *name);
/* A state's name to its value; KR_NSTATES if unknown. */
kr_reg_state kr_reg_state_named(const char *name);

#endif
