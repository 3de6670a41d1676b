/* virtio_vsock_add(): wiring into a VM's virtio set, its errors, and cleanup. */
#include <errno.h>
#include <linux/virtio_ids.h>
#include <linux/virtio_mmio.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/vsock_test_env.h"
#include "virtio/devices.h"
#include "vmm/bus.h"
#include "vmm/log.h"

struct fake_kvm {
	unsigned nr_io, nr_irq;
	uint32_t io_match[8], irq_gsi[8];
	int io_efd[8], irq_efd[8];
};

struct denv {
	struct vm *vm;
	struct evloop loop;
	struct virtio_set set;
	struct fake_kvm kvm;
	struct vsock_cfg cfg;
	char dir[64], path[96], err[256];
	int fds;
};

static int fake_ioeventfd(void *ctx, int efd, uint64_t gpa, uint32_t datamatch)
{
	struct fake_kvm *k = ctx;
	(void)gpa;
	k->io_match[k->nr_io] = datamatch;
	k->io_efd[k->nr_io++] = efd;
	return 0;
}

static int fake_irqfd(void *ctx, int efd, uint32_t gsi)
{
	struct fake_kvm *k = ctx;
	k->irq_gsi[k->nr_irq] = gsi;
	k->irq_efd[k->nr_irq++] = efd;
	return 0;
}

static int setup(void **state)
{
	struct denv *e = calloc(1, sizeof(*e));
	log_setup(2, LOG_OFF, 0, 0);
	e->fds = vt_count_fds();
	e->vm = calloc(1, sizeof(*e->vm));
	assert_int_equal(guest_mem_init(&e->vm->mem, 1 << 20), 0);
	assert_int_equal(evloop_init(&e->loop), 0);
	struct virtio_kvm_ops ops = {fake_ioeventfd, fake_irqfd, &e->kvm, NULL};
	virtio_set_init(&e->set, &ops);
	snprintf(e->dir, sizeof(e->dir), "/tmp/kiln-vsockdev-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/v.sock", e->dir);
	e->cfg = (struct vsock_cfg){.present = true, .guest_cid = 52, .uds_path = e->path};
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct denv *e = *state;
	virtio_set_destroy(&e->set);
	evloop_destroy(&e->loop);
	guest_mem_free(&e->vm->mem);
	int ok = rmdir(e->dir) == 0 && vt_count_fds() == e->fds;
	free(e->vm);
	free(e);
	return ok ? 0 : -1;
}

static int add(struct denv *e)
{
	return virtio_vsock_add(&e->set, e->vm, &e->loop, &e->cfg, e->err, sizeof(e->err));
}

static void test_add_wires_the_device(void **state)
{
	struct denv *e = *state;
	assert_int_equal(add(e), 0);
	assert_non_null(e->set.vsock);
	assert_int_equal(e->set.nr, 1);
	assert_int_equal(e->set.acpi[0].base, LAYOUT_VIRTIO_MMIO_BASE);
	assert_int_equal(e->set.acpi[0].gsi, LAYOUT_VIRTIO_IRQ_BASE);
	assert_int_equal(e->kvm.nr_io, 4); /* rx, tx, event, InterruptACK */
	assert_int_equal(e->kvm.nr_irq, 1);
	struct stat st;
	assert_int_equal(stat(e->path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	/* The guest reads its device id and CID through the MMIO bus. */
	uint32_t id = 0;
	uint64_t cid = 0;
	assert_int_equal(bus_read(&e->vm->mmio, LAYOUT_VIRTIO_MMIO_BASE + VIRTIO_MMIO_DEVICE_ID,
				  (uint8_t *)&id, 4),
			 0);
	assert_int_equal(id, VIRTIO_ID_VSOCK);
	assert_int_equal(bus_read(&e->vm->mmio, LAYOUT_VIRTIO_MMIO_BASE + VIRTIO_MMIO_CONFIG,
				  (uint8_t *)&cid, 8),
			 0);
	assert_int_equal(cid, 52);
	/* One vsock device per VM, as in Firecracker. */
	assert_int_equal(add(e), -EEXIST);
	assert_string_equal(e->err, "vsock: more than one vsock device");
	virtio_set_destroy(&e->set);
	assert_int_equal(stat(e->path, &st), -1); /* the socket file went with it */
}

/* An existing uds_path is refused (nothing unlinked), and nothing is left open. */
static void test_add_existing_path(void **state)
{
	struct denv *e = *state;
	FILE *f = fopen(e->path, "w");
	assert_non_null(f);
	fclose(f);
	assert_int_equal(add(e), -EADDRINUSE);
	char want[200];
	snprintf(want, sizeof(want), "vsock.uds_path: %s: %s", e->path, strerror(EADDRINUSE));
	assert_string_equal(e->err, want);
	assert_int_equal(e->set.nr, 0);
	assert_null(e->set.vsock);
	assert_int_equal(access(e->path, F_OK), 0);
	unlink(e->path);
	e->cfg.uds_path = "/nonexistent-dir/v.sock";
	assert_int_equal(add(e), -ENOENT);
	assert_string_equal(e->err, "vsock.uds_path: /nonexistent-dir/v.sock: No such file or "
				    "directory");
	char longpath[200];
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	e->cfg.uds_path = longpath;
	assert_int_equal(add(e), -ENAMETOOLONG);
	assert_non_null(strstr(e->err, "longer than 107 bytes"));
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_add_wires_the_device),
	    T(test_add_existing_path),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
