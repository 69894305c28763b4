#include "rules.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#define R(x) (1u << KR_ROLE_##x)
#define S(x) (1u << KR_ST_##x)
#define HELD (S(REGISTERED) | S(ACTIVE) | S(DEACTIVATED)) /* a registration exists */
#define LIVE (S(LISTED) | HELD)                           /* listed, not deleted */

/* RFC 5280 section 5.3.1 */
enum { CESSATION = 5, AFFILIATION = 3, SUPERSEDED = 4, NONE = -1 };

typedef struct rule {
	const char *name;
	unsigned roles, states;
	kr_reg_state to;
	unsigned needs, blocked; /* flags */
	int revoke;
} rule;

/* docs/registry.md is this table. */
static const rule rules[KR_NCMDS] = {
	[KR_CMD_IMPORT] = {"import", R(OPERATOR) | R(OWNER), S(NONE), KR_ST_LISTED, 0, 0, NONE},
	[KR_CMD_REGISTER] = {"register", R(OPERATOR) | R(OWNER), S(LISTED), KR_ST_REGISTERED, 0,
			     KR_LOCK_UPDATE, NONE},
	/* the MNO relays the device's CSR (online, by CMP or EST: zero touch) */
	[KR_CMD_ACTIVATE] = {"activate", R(OPERATOR) | R(SPONSOR) | R(MNO), S(REGISTERED),
			     KR_ST_ACTIVE, 0, KR_FL_PENDING_TRANSFER | KR_FL_HOLD | KR_LOCK_UPDATE,
			     NONE},
	[KR_CMD_AUTHCODE] = {"authcode", R(OPERATOR) | R(OWNER), LIVE, KR_ST_SAME, 0, 0, NONE},
	/* the device's enrollment secret for CMP's PBM, as the owner hands out codes */
	[KR_CMD_SECRET] = {"secret", R(OPERATOR) | R(OWNER), LIVE, KR_ST_SAME, 0, 0, NONE},
	[KR_CMD_TRANSFER_REQUEST] = {"transfer request", R(OTHER_ASP), HELD, KR_ST_SAME, 0,
				     KR_FL_PENDING_TRANSFER | KR_FL_HOLD | KR_LOCK_TRANSFER, NONE},
	[KR_CMD_TRANSFER_APPROVE] = {"transfer approve", R(OPERATOR) | R(SPONSOR), HELD,
				     KR_ST_REGISTERED, KR_FL_PENDING_TRANSFER, 0, AFFILIATION},
	[KR_CMD_TRANSFER_REJECT] = {"transfer reject", R(OPERATOR) | R(SPONSOR), HELD, KR_ST_SAME,
				    KR_FL_PENDING_TRANSFER, 0, NONE},
	[KR_CMD_TRANSFER_CANCEL] = {"transfer cancel", R(OPERATOR) | R(GAINING), HELD, KR_ST_SAME,
				    KR_FL_PENDING_TRANSFER, 0, NONE},
	[KR_CMD_TRANSFER_QUERY] = {"transfer query",
				   R(OPERATOR) | R(OWNER) | R(SPONSOR) | R(GAINING), HELD,
				   KR_ST_SAME, KR_FL_PENDING_TRANSFER, 0, NONE},
	[KR_CMD_HOLD] = {"hold", R(OPERATOR) | R(SPONSOR), S(ACTIVE), KR_ST_SAME, 0,
			 KR_FL_HOLD | KR_FL_PENDING_TRANSFER | KR_LOCK_UPDATE, NONE},
	[KR_CMD_UNHOLD] = {"unhold", R(OPERATOR) | R(SPONSOR), S(ACTIVE), KR_ST_SAME, KR_FL_HOLD,
			   KR_FL_PENDING_TRANSFER | KR_LOCK_UPDATE, NONE},
	[KR_CMD_LOCK] = {"lock", R(OPERATOR) | R(OWNER), LIVE, KR_ST_SAME, 0, 0, NONE},
	[KR_CMD_UNLOCK] = {"unlock", R(OPERATOR) | R(OWNER), LIVE, KR_ST_SAME, 0, 0, NONE},
	[KR_CMD_DEACTIVATE] = {"deactivate", R(OPERATOR) | R(OWNER) | R(SPONSOR), S(ACTIVE),
			       KR_ST_DEACTIVATED, 0, KR_FL_PENDING_TRANSFER | KR_LOCK_UPDATE,
			       CESSATION},
	[KR_CMD_REACTIVATE] = {"reactivate", R(OPERATOR) | R(SPONSOR), S(DEACTIVATED), KR_ST_ACTIVE,
			       0, KR_FL_PENDING_TRANSFER | KR_FL_HOLD | KR_LOCK_UPDATE, NONE},
	/* a new certificate (a new key: CMP kur, EST simplereenroll) under a new
	 * profile id; the one it replaces revoked as superseded */
	[KR_CMD_REKEY] = {"rekey", R(OPERATOR) | R(SPONSOR) | R(MNO), S(ACTIVE), KR_ST_ACTIVE, 0,
			  KR_FL_PENDING_TRANSFER | KR_FL_HOLD | KR_LOCK_UPDATE, SUPERSEDED},
	[KR_CMD_DELETE] = {"delete", R(OPERATOR) | R(OWNER), LIVE, KR_ST_PENDING_DELETE, 0,
			   KR_FL_PENDING_TRANSFER | KR_LOCK_DELETE, CESSATION},
	[KR_CMD_RESTORE] = {"restore", R(OPERATOR) | R(OWNER), S(PENDING_DELETE), KR_ST_SAME, 0, 0,
			    NONE},
	[KR_CMD_PURGE] = {"purge", R(OPERATOR), S(PENDING_DELETE), KR_ST_NONE, 0, 0, NONE},
	[KR_CMD_SWITCH_MNO] = {"switch-mno", R(OPERATOR) | R(OWNER), LIVE, KR_ST_SAME, 0,
			       KR_FL_PENDING_TRANSFER | KR_LOCK_UPDATE, NONE},
	[KR_CMD_RESET] = {"reset", R(OPERATOR) | R(OWNER) | R(SPONSOR), S(ACTIVE) | S(DEACTIVATED),
			  KR_ST_REGISTERED, 0, KR_FL_PENDING_TRANSFER | KR_LOCK_UPDATE, SUPERSEDED},
	[KR_CMD_SHOW] = {"show", R(OPERATOR) | R(OWNER) | R(MNO) | R(SPONSOR) | R(GAINING),
			 LIVE | S(PENDING_DELETE), KR_ST_SAME, 0, 0, NONE},
	[KR_CMD_PAYLOAD] = {"payload", R(OPERATOR) | R(SPONSOR) | R(MNO), S(ACTIVE), KR_ST_SAME, 0,
			    KR_FL_HOLD, NONE},
};

static const char *const role_names[KR_NROLES] = {
	"operator", "owner", "MNO", "sponsoring ASP", "gaining ASP", "another ASP", "a stranger",
};
static const char *const state_names[KR_NSTATES] = {
	"none", "listed", "registered", "active", "deactivated", "pendingDelete",
};
static const char *const flag_names[KR_NFLAGS] = {
	"pendingTransfer", "hold", "transferProhibited", "deleteProhibited", "updateProhibited",
};
/* Why a state refuses a command, said as what it is. */
static const char *const state_refusal[KR_NSTATES] = {
	"no such device in the registry",
	"the device is not registered with this ASP",
	"the device is registered, not active",
	"the device is active",
	"the device is deactivated",
	"the device is pending deletion",
};
static const char *const needs_refusal[KR_NFLAGS] = {
	"no transfer is pending", "the device is not on hold", NULL, NULL, NULL,
};
static const char *const blocked_refusal[KR_NFLAGS] = {
	"a transfer is pending",
	"the device is on hold",
	"the device is locked against transfer (transferProhibited)",
	"the device is locked against deletion (deleteProhibited)",
	"the device is locked against updates (updateProhibited)",
};
static const char *const role_refusal[KR_NROLES] = {
	"the operator may not do this",
	"the device's owner may not do this",
	"the device's MNO may not do this",
	"the sponsoring ASP may not do this",
	"the gaining ASP may not do this",
	"the account does not sponsor this device",
	"the account is not this device's owner or MNO",
};

static kr_reg_verdict refuse(const char *why) { return (kr_reg_verdict){0, why, KR_ST_SAME, NONE}; }

kr_reg_verdict kr_reg_decide(kr_reg_cmd cmd, kr_reg_role role, kr_reg_state state, unsigned flags)
{
	if ((unsigned)cmd >= KR_NCMDS || (unsigned)role >= KR_NROLES ||
	    (unsigned)state >= KR_NSTATES)
		return refuse("not a registry command, account or state");
	const rule *r = &rules[cmd];
	/* An account with no business with a device learns nothing of it,
	 * not even its state. */
	if (!(r->roles & (1u << role)))
		return refuse(role_refusal[role]);
	if (!(r->states & (1u << state)))
		return refuse(state_refusal[state]);
	for (unsigned i = 0; i < KR_NFLAGS; i++) {
		unsigned bit = 1u << i;
		if ((r->needs & bit) && !(flags & bit))
			return refuse(needs_refusal[i]);
		if ((r->blocked & bit) && (flags & bit))
			return refuse(blocked_refusal[i]);
	}
	return (kr_reg_verdict){1, NULL, r->to == KR_ST_SAME ? state : r->to, r->revoke};
}

const char *kr_reg_cmd_name(kr_reg_cmd c) { return (unsigned)c < KR_NCMDS ? rules[c].name : "?"; }

const char *kr_reg_role_name(kr_reg_role r)
{
	return (unsigned)r < KR_NROLES ? role_names[r] : "?";
}

const char *kr_reg_state_name(kr_reg_state s)
{
	return (unsigned)s < KR_NSTATES ? state_names[s] : "?";
}

const char *kr_reg_flag_name(unsigned flag)
{
	for (unsigned i = 0; i < KR_NFLAGS; i++)
		if (flag == 1u << i)
			return flag_names[i];
	return "?";
}

unsigned kr_reg_lock_named(const char *name)
{
	static const struct {
		const char *short_name;
		unsigned bit;
	} locks[] = {{"transfer", KR_LOCK_TRANSFER},
		     {"delete", KR_LOCK_DELETE},
		     {"update", KR_LOCK_UPDATE}};
	for (size_t i = 0; i < sizeof locks / sizeof *locks; i++)
		if (!strcasecmp(name, locks[i].short_name) ||
		    !strcasecmp(name, kr_reg_flag_name(locks[i].bit)))
			return locks[i].bit;
	return 0;
}

kr_reg_state kr_reg_state_named(const char *name)
{
	for (int i = 0; i < KR_NSTATES; i++)
		if (!strcmp(name, state_names[i]))
			return (kr_reg_state)i;
	return KR_NSTATES;
}
