/* kiln's command line: parsed into struct kiln_args, --help, --version and
 * --describe-snapshot served on the spot, bad flags reported on one line with exit 2. */
#include "vmm/kiln.h"
#include "vmm/log.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#define DEFAULT_API_SOCK "/run/kiln.socket"
#define DEFAULT_ID "anonymous-instance"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: kiln [--api-sock PATH] [--config-file PATH] [--id ID]\n"
		"            [--http-api-max-payload-size BYTES] [--no-seccomp]\n"
		"            [--virtio-mmio-cmdline] [--boot-timer]\n"
		"       kiln --no-api --config-file PATH [...]\n"
		"       kiln [--no-api] --restore-from STATE --mem-file MEM [...]\n"
		"       kiln --describe-snapshot STATE\n"
		"       kiln --help | --version\n"
		"Serves Firecracker's REST API on the Unix socket --api-sock "
		"(default\n" DEFAULT_API_SOCK
		") and boots the microVM on InstanceStart, or at once from\n"
		"--config-file (Firecracker's schema). Exits when the guest reboots or powers\n"
		"off. SIGUSR2 logs the state of every vCPU and virtqueue; SIGTERM logs it too,\n"
		"then stops the VM.\n"
		"  --no-api               no API socket (needs --config-file or --restore-from)\n"
		"  --restore-from STATE   restore the snapshot STATE with the memory file MEM\n"
		"  --mem-file MEM         (--restore-from's), and run it\n"
		"  --describe-snapshot STATE  print what a snapshot's state file holds\n"
		"  --no-seccomp           run without seccomp filters (debugging only)\n"
		"  --virtio-mmio-cmdline  also describe virtio devices with virtio_mmio.device=\n"
		"                         on the kernel command line, for kernels without ACPI\n"
		"  --boot-timer           Firecracker's boot timer: a guest write of the byte 123\n"
		"                         at 0xc0000000 logs Guest-boot-time (at Info)\n");
}

static size_t parse_size(const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v == 0 || v > (1u << 30))
		die(KILN_EXIT_BADCFG, "--http-api-max-payload-size: %s: expected 1..%u bytes", s,
		    1u << 30);
	return (size_t)v;
}

/* --describe-snapshot: the state file's contents on stdout, then exit. */
static _Noreturn void describe_snapshot(const char *path)
{
	char err[512];
	if (kiln_snapshot_describe(path, stdout, err, sizeof(err)))
		die(KILN_EXIT_BADCFG, "--describe-snapshot: %s", err);
	exit(KILN_EXIT_OK);
}

void kiln_parse_args(int argc, char **argv, struct kiln_args *a)
{
	a->id = DEFAULT_ID;
	a->api_sock = DEFAULT_API_SOCK;
	a->max_payload = API_DEFAULT_MAX_PAYLOAD;
	enum {
		OPT_CONFIG = 1,
		OPT_ID,
		OPT_NO_API,
		OPT_API_SOCK,
		OPT_MAX_PAYLOAD,
		OPT_NO_SECCOMP,
		OPT_MMIO_CMDLINE,
		OPT_BOOT_TIMER,
		OPT_RESTORE,
		OPT_MEM_FILE,
		OPT_DESCRIBE,
		OPT_HELP,
		OPT_VERSION
	};
	static const struct option opts[] = {
	    {"config-file", required_argument, NULL, OPT_CONFIG},
	    {"id", required_argument, NULL, OPT_ID},
	    {"no-api", no_argument, NULL, OPT_NO_API},
	    {"api-sock", required_argument, NULL, OPT_API_SOCK},
	    {"http-api-max-payload-size", required_argument, NULL, OPT_MAX_PAYLOAD},
	    {"no-seccomp", no_argument, NULL, OPT_NO_SECCOMP},
	    {"virtio-mmio-cmdline", no_argument, NULL, OPT_MMIO_CMDLINE},
	    {"boot-timer", no_argument, NULL, OPT_BOOT_TIMER},
	    {"restore-from", required_argument, NULL, OPT_RESTORE},
	    {"mem-file", required_argument, NULL, OPT_MEM_FILE},
	    {"describe-snapshot", required_argument, NULL, OPT_DESCRIBE},
	    {"help", no_argument, NULL, OPT_HELP},
	    {"version", no_argument, NULL, OPT_VERSION},
	    {0, 0, 0, 0},
	};
	opterr = 0;
	int c;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case OPT_CONFIG:
			a->config_path = optarg;
			break;
		case OPT_ID:
			a->id = optarg;
			break;
		case OPT_NO_API:
			a->no_api = true;
			break;
		case OPT_API_SOCK:
			a->api_sock = optarg;
			break;
		case OPT_MAX_PAYLOAD:
			a->max_payload = parse_size(optarg);
			break;
		case OPT_NO_SECCOMP:
			a->no_seccomp = true;
			break;
		case OPT_MMIO_CMDLINE:
			a->virtio_mmio_cmdline = true;
			break;
		case OPT_BOOT_TIMER:
			a->boot_timer = true;
			break;
		case OPT_RESTORE:
			a->restore_from = optarg;
			break;
		case OPT_MEM_FILE:
			a->mem_file = optarg;
			break;
		case OPT_DESCRIBE:
			describe_snapshot(optarg);
		case OPT_HELP:
			usage(stdout);
			exit(KILN_EXIT_OK);
		case OPT_VERSION:
			printf("kiln %s\n", KILN_VERSION);
			exit(KILN_EXIT_OK);
		default:
			die(KILN_EXIT_BADCFG, "%s: unknown option or missing argument (see --help)",
			    argv[optind - 1]);
		}
	}
	if (optind < argc)
		die(KILN_EXIT_BADCFG, "%s: unexpected argument (see --help)", argv[optind]);
	if (a->restore_from && a->config_path)
		die(KILN_EXIT_BADCFG, "--restore-from and --config-file exclude each other");
	if (!a->restore_from != !a->mem_file)
		die(KILN_EXIT_BADCFG, "--restore-from and --mem-file go together (see --help)");
	if (a->no_api && !a->config_path && !a->restore_from)
		die(KILN_EXIT_BADCFG,
		    "--no-api needs --config-file or --restore-from (see --help)");
}
