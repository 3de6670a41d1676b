/* libFuzzer harness for the config parser: any input must give 0 or -EINVAL with a
 * one-line message, and never crash, leak or read out of bounds. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "vmm/config.h"

/* What a successful parse promises the rest of kiln. */
static int config_ok(const struct kiln_config *c)
{
	unsigned roots = 0;
	if (!c->boot.kernel_image_path || !c->boot.kernel_image_path[0] ||
	    c->machine.vcpu_count < 1 || c->machine.vcpu_count > 32 ||
	    c->machine.mem_size_mib < 1 || c->nr_drives > CONFIG_MAX_DRIVES ||
	    c->nr_nets > CONFIG_MAX_NETS || (c->vsock.present && c->vsock.guest_cid < 3))
		return 0;
	for (unsigned i = 0; i < c->nr_drives; i++)
		roots += c->drives[i].is_root_device;
	for (unsigned i = 0; i < c->nr_nets; i++)
		if (!c->nets[i].host_dev_name[0] || !c->nets[i].id[0])
			return 0;
	return roots <= 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kiln_config cfg;
	char err[256];
	/* A private copy so a read past `size` hits ASan's redzone, not the fuzzer's buffer. */
	char *buf = malloc(size ? size : 1);
	if (!buf)
		return 0;
	memcpy(buf, data, size);
	err[0] = '\0';
	int rc = config_parse(buf, size, &cfg, err, sizeof(err));
	if (rc != 0 && (rc != -EINVAL || err[0] == '\0' || strchr(err, '\n')))
		abort();
	if (rc == 0 && !config_ok(&cfg))
		abort();
	config_free(&cfg);
	config_free(&cfg); /* must be safe on a freed (zeroed) struct */
	free(buf);
	return 0;
}
