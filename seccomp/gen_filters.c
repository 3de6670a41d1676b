/* gen_filters: a build-time host program (gcc, -lseccomp). Compiles the allow-lists of
 * seccomp/rules.h into one classic-BPF program per role with libseccomp and writes them,
 * with a table of x86-64 syscall names for the SIGSYS message, as C source:
 *   gen_filters OUTPUT.c
 * kiln (static musl, which cannot link libseccomp) embeds that file and loads the programs
 * with seccomp(2) itself. Default action SECCOMP_RET_TRAP; x86-64 only: a syscall of any
 * other ABI (i386 through int 0x80, x32) kills the process. */
#include "seccomp/rules.h"

#include <errno.h>
#include <seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef __x86_64__
#error "gen_filters takes syscall numbers from the host's headers: build it on x86-64"
#endif

/* Highest syscall number looked up for the name table. */
#define NAMES_MAX 1024

static int add_rule(scmp_filter_ctx ctx, enum seccomp_role role, const struct seccomp_rule *r,
		    uint8_t priority)
{
	struct scmp_arg_cmp cmp[SECCOMP_RULE_MAX_ARGS];
	unsigned n = 0;
	for (unsigned i = 0; i < SECCOMP_RULE_MAX_ARGS; i++) {
		const struct seccomp_arg_cond *c = &r->cond[i];
		if (c->used)
			cmp[n++] = (struct scmp_arg_cmp){.arg = c->arg,
							 .op = SCMP_CMP_MASKED_EQ,
							 .datum_a = c->mask,
							 .datum_b = c->value};
	}
	int err = seccomp_syscall_priority(ctx, r->nr, priority);
	if (!err)
		err = seccomp_rule_add_array(ctx, SCMP_ACT_ALLOW, r->nr, n, cmp);
	if (err)
		fprintf(stderr, "gen_filters: %s: rule for %s: %s\n", seccomp_role_name(role),
			r->name, strerror(-err));
	return err;
}

static scmp_filter_ctx build_filter(enum seccomp_role role)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	if (!ctx)
		return NULL;
	int err = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!err && seccomp_arch_native() != SCMP_ARCH_X86_64) {
		err = seccomp_arch_remove(ctx, SCMP_ARCH_NATIVE);
		if (!err)
			err = seccomp_arch_add(ctx, SCMP_ARCH_X86_64);
	}
	for (unsigned i = 0; !err && i < SECCOMP_NR_RULES; i++) {
		const struct seccomp_rule *r = &seccomp_rules[i];
		/* Earlier entries get a higher priority: libseccomp tests them first. */
		uint8_t prio = i < 255 ? 255 - i : 0;
		if (r->roles & (1u << role))
			err = add_rule(ctx, role, r, prio);
	}
	if (err) {
		seccomp_release(ctx);
		return NULL;
	}
	return ctx;
}

/* Exports ctx as BPF into a malloc'd array; NULL on error. */
static struct sock_filter *export_bpf(scmp_filter_ctx ctx, size_t *len)
{
	FILE *tmp = tmpfile();
	struct sock_filter *prog = NULL;
	if (!tmp || seccomp_export_bpf(ctx, fileno(tmp)) < 0 || fseek(tmp, 0, SEEK_END) < 0)
		goto out;
	long bytes = ftell(tmp);
	if (bytes <= 0 || bytes % sizeof(*prog) || bytes / sizeof(*prog) > BPF_MAXINSNS)
		goto out;
	prog = malloc(bytes);
	rewind(tmp);
	if (prog && fread(prog, 1, bytes, tmp) != (size_t)bytes) {
		free(prog);
		prog = NULL;
	}
	*len = bytes / sizeof(*prog);
out:
	if (tmp)
		fclose(tmp);
	return prog;
}

static void describe_rule(FILE *out, const struct seccomp_rule *r)
{
	fprintf(out, " *   %s", r->name);
	for (unsigned i = 0; i < SECCOMP_RULE_MAX_ARGS; i++) {
		const struct seccomp_arg_cond *c = &r->cond[i];
		if (c->used)
			fprintf(out, "%s(arg%u & %#llx) == %#llx", i ? " && " : " if ", c->arg,
				(unsigned long long)c->mask, (unsigned long long)c->value);
	}
	fprintf(out, ": %s\n", r->why);
}

static int emit_role(FILE *out, enum seccomp_role role)
{
	scmp_filter_ctx ctx = build_filter(role);
	size_t len = 0;
	struct sock_filter *prog = ctx ? export_bpf(ctx, &len) : NULL;
	if (ctx)
		seccomp_release(ctx);
	if (!prog) {
		fprintf(stderr, "gen_filters: cannot build the %s filter\n",
			seccomp_role_name(role));
		return -1;
	}
	fprintf(out, "/* role %s: %zu instructions, allows\n", seccomp_role_name(role), len);
	for (unsigned i = 0; i < SECCOMP_NR_RULES; i++)
		if (seccomp_rules[i].roles & (1u << role))
			describe_rule(out, &seccomp_rules[i]);
	fprintf(out, " */\nstatic const struct sock_filter filter_%s[] = {\n",
		seccomp_role_name(role));
	for (size_t i = 0; i < len; i++)
		fprintf(out, "\t{0x%04x, %u, %u, 0x%08x},\n", prog[i].code, prog[i].jt, prog[i].jf,
			prog[i].k);
	fprintf(out, "};\n\n");
	free(prog);
	return 0;
}

static void emit_names(FILE *out)
{
	int last = 0;
	for (int nr = 0; nr < NAMES_MAX; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
		if (name)
			last = nr;
		free(name);
	}
	fprintf(out, "const char *const seccomp_syscall_names[] = {\n");
	for (int nr = 0; nr <= last; nr++) {
		char *name = seccomp_syscall_resolve_num_arch(SCMP_ARCH_X86_64, nr);
		if (name)
			fprintf(out, "\t[%d] = \"%s\",\n", nr, name);
		free(name);
	}
	fprintf(out, "};\n\nconst unsigned seccomp_nr_syscall_names = %d;\n", last + 1);
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen_filters OUTPUT.c\n");
		return 2;
	}
	FILE *out = fopen(argv[1], "w");
	if (!out) {
		fprintf(stderr, "gen_filters: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	fprintf(out, "/* Generated by seccomp/gen_filters from seccomp/rules.h: do not edit. */\n"
		     "#include \"seccomp/seccomp.h\"\n\n");
	int err = 0;
	for (int role = 0; role < SECCOMP_ROLE_COUNT && !err; role++)
		err = emit_role(out, role);
	if (!err) {
		fprintf(out, "const struct seccomp_bpf seccomp_filters[SECCOMP_ROLE_COUNT] = {\n");
		for (int role = 0; role < SECCOMP_ROLE_COUNT; role++)
			fprintf(out,
				"\t[%d] = {filter_%s, sizeof(filter_%s) / sizeof(filter_%s[0])},\n",
				role, seccomp_role_name(role), seccomp_role_name(role),
				seccomp_role_name(role));
		fprintf(out, "};\n\n");
		emit_names(out);
	}
	if (fclose(out) != 0 || err) {
		fprintf(stderr, "gen_filters: %s: not written\n", argv[1]);
		remove(argv[1]);
		return 1;
	}
	return 0;
}
