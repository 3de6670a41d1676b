#include "vmm/serial.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

enum {
	REG_DATA = 0, /* RBR/THR, or DLL with DLAB */
	REG_IER = 1,  /* or DLM with DLAB */
	REG_IIR_FCR = 2,
	REG_LCR = 3,
	REG_MCR = 4,
	REG_LSR = 5,
	REG_MSR = 6,
	REG_SCR = 7,
};

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IER_MASK 0x0f
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define FCR_FIFO_ENABLE 0x01
#define FCR_CLEAR_RX 0x02
#define LCR_DLAB 0x80
#define MCR_DTR 0x01
#define MCR_RTS 0x02
#define MCR_OUT1 0x04
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define MCR_MASK 0x1f
#define LSR_DR 0x01
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MSR_CTS 0x10
#define MSR_DSR 0x20
#define MSR_RI 0x40
#define MSR_DCD 0x80

static uint8_t serial_iir(const struct serial *s)
{
	uint8_t fifo = (s->fcr & FCR_FIFO_ENABLE) ? IIR_FIFO_ENABLED : 0;
	if ((s->ier & IER_RDI) && s->rx_count)
		return fifo | IIR_RDI;
	if ((s->ier & IER_THRI) && s->thri_pending)
		return fifo | IIR_THRI;
	return fifo | IIR_NO_INT;
}

static void serial_update_irq(struct serial *s)
{
	int level = !(serial_iir(s) & IIR_NO_INT);
	if (level != s->irq_level && s->irq.set_level) {
		s->irq.set_level(s->irq.ctx, level);
		s->irq_level = level;
	}
}

static uint8_t serial_modem_status(const struct serial *s)
{
	if (!(s->mcr & MCR_LOOP))
		return MSR_DCD | MSR_DSR | MSR_CTS; /* a cable with a peer that's always there */
	uint8_t m = 0;
	m |= (s->mcr & MCR_RTS) ? MSR_CTS : 0;
	m |= (s->mcr & MCR_DTR) ? MSR_DSR : 0;
	m |= (s->mcr & MCR_OUT1) ? MSR_RI : 0;
	m |= (s->mcr & MCR_OUT2) ? MSR_DCD : 0;
	return m;
}

static void serial_rx_put(struct serial *s, uint8_t c)
{
	if (s->rx_count == SERIAL_FIFO_LEN)
		return; /* overrun: the byte is lost, as on hardware */
	s->rx[(s->rx_head + s->rx_count) % SERIAL_FIFO_LEN] = c;
	s->rx_count++;
}

/* The guest made room in the FIFO: wake the console if it paused input on a full one. */
static void serial_rx_space_made(struct serial *s)
{
	if (s->rx_space_wanted && s->space_efd >= 0) {
		uint64_t one = 1;
		ssize_t rc = write(s->space_efd, &one, sizeof(one));
		(void)rc;
		s->rx_space_wanted = false;
	}
}

static uint8_t serial_rx_get(struct serial *s)
{
	if (!s->rx_count)
		return 0;
	uint8_t c = s->rx[s->rx_head];
	s->rx_head = (s->rx_head + 1) % SERIAL_FIFO_LEN;
	s->rx_count--;
	serial_rx_space_made(s);
	return c;
}

static void serial_transmit(struct serial *s, uint8_t c)
{
	if (s->mcr & MCR_LOOP) {
		serial_rx_put(s, c);
	} else {
		/* Guest output is best effort: a closed stdout must not stop the guest. */
		ssize_t rc;
		do
			rc = write(s->out_fd, &c, 1);
		while (rc < 0 && errno == EINTR);
		s->tx_bytes++;
	}
	s->thri_pending = true;
}

static uint8_t serial_read_reg(struct serial *s, uint64_t reg)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case REG_DATA:
		return dlab ? s->dll : serial_rx_get(s);
	case REG_IER:
		return dlab ? s->dlm : s->ier;
	case REG_IIR_FCR: {
		uint8_t iir = serial_iir(s);
		if ((iir & 0x0f) == IIR_THRI)
			s->thri_pending = false; /* reading IIR acknowledges THRE */
		return iir;
	}
	case REG_LCR:
		return s->lcr;
	case REG_MCR:
		return s->mcr;
	case REG_LSR:
		return s->lsr | LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0);
	case REG_MSR:
		return serial_modem_status(s);
	default:
		return s->scr;
	}
}

static void serial_write_reg(struct serial *s, uint64_t reg, uint8_t val)
{
	bool dlab = s->lcr & LCR_DLAB;
	switch (reg) {
	case REG_DATA:
		if (dlab)
			s->dll = val;
		else
			serial_transmit(s, val);
		break;
	case REG_IER:
		if (dlab) {
			s->dlm = val;
		} else {
			/* Enabling THRI with an empty transmitter raises it at once. */
			if (!(s->ier & IER_THRI) && (val & IER_THRI))
				s->thri_pending = true;
			s->ier = val & IER_MASK;
		}
		break;
	case REG_IIR_FCR:
		s->fcr = val & FCR_FIFO_ENABLE;
		if (val & FCR_CLEAR_RX) {
			s->rx_count = 0;
			serial_rx_space_made(s);
		}
		break;
	case REG_LCR:
		s->lcr = val;
		break;
	case REG_MCR:
		s->mcr = val & MCR_MASK;
		break;
	case REG_SCR:
		s->scr = val;
		break;
	default: /* LSR and MSR are read-only */
		break;
	}
}

static void serial_bus_read(void *dev, uint64_t off, uint8_t *data, uint32_t len)
{
	struct serial *s = dev;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len; i++)
		data[i] = off + i < 8 ? serial_read_reg(s, off + i) : 0xff;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

static void serial_bus_write(void *dev, uint64_t off, const uint8_t *data, uint32_t len)
{
	struct serial *s = dev;
	pthread_mutex_lock(&s->lock);
	for (uint32_t i = 0; i < len && off + i < 8; i++)
		serial_write_reg(s, off + i, data[i]);
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
}

const struct bus_dev_ops serial_bus_ops = {
    .read = serial_bus_read,
    .write = serial_bus_write,
};

int serial_init(struct serial *s, int out_fd, int space_efd, const struct serial_irq *irq)
{
	memset(s, 0, sizeof(*s));
	int err = pthread_mutex_init(&s->lock, NULL);
	if (err)
		return -err;
	s->out_fd = out_fd;
	s->space_efd = space_efd;
	s->irq = *irq;
	s->mcr = MCR_OUT2;
	s->dll = 12; /* 9600 baud */
	return 0;
}

void serial_destroy(struct serial *s)
{
	pthread_mutex_destroy(&s->lock);
}

size_t serial_rx_push(struct serial *s, const uint8_t *buf, size_t len)
{
	size_t n = 0;
	pthread_mutex_lock(&s->lock);
	while (n < len && s->rx_count < SERIAL_FIFO_LEN)
		serial_rx_put(s, buf[n++]);
	if (s->rx_count == SERIAL_FIFO_LEN)
		s->rx_space_wanted = true;
	serial_update_irq(s);
	pthread_mutex_unlock(&s->lock);
	return n;
}

_Static_assert(sizeof(struct serial_state) == 16 + SERIAL_FIFO_LEN, "serial_state layout");

int serial_save(struct serial *s, struct snap_writer *w)
{
	struct serial_state st;
	memset(&st, 0, sizeof(st));
	pthread_mutex_lock(&s->lock);
	st = (struct serial_state){.ier = s->ier,
				   .lcr = s->lcr,
				   .mcr = s->mcr,
				   .lsr = s->lsr,
				   .msr = s->msr,
				   .scr = s->scr,
				   .dll = s->dll,
				   .dlm = s->dlm,
				   .fcr = s->fcr,
				   .thri_pending = s->thri_pending,
				   .irq_level = s->irq_level != 0,
				   .rx_count = s->rx_count};
	for (unsigned i = 0; i < s->rx_count; i++)
		st.rx[i] = s->rx[(s->rx_head + i) % SERIAL_FIFO_LEN];
	pthread_mutex_unlock(&s->lock);
	return snap_put(w, SNAP_SEC_SERIAL, 0, &st, sizeof(st));
}

/* What the guest cannot have set: NULL, or what is wrong. LSR and MSR are computed on
 * read, so their stored bits stay 0. */
static const char *serial_state_error(const struct serial_state *st)
{
	if (st->ier & ~IER_MASK || st->mcr & ~MCR_MASK || st->fcr & ~FCR_FIFO_ENABLE || st->lsr ||
	    st->msr)
		return "register bits the guest cannot set";
	if (st->thri_pending > 1 || st->irq_level > 1 || st->pad[0])
		return "malformed state";
	if (st->rx_count > SERIAL_FIFO_LEN)
		return "receive FIFO count beyond its capacity";
	for (unsigned i = st->rx_count; i < SERIAL_FIFO_LEN; i++)
		if (st->rx[i])
			return "bytes past the receive FIFO count";
	return NULL;
}

int serial_restore(struct serial *s, const struct snap_reader *r, char *err, size_t errlen)
{
	struct serial_state st;
	int ret = snap_get(r, SNAP_SEC_SERIAL, 0, &st, sizeof(st));
	const char *why = ret == -ENOENT ? "missing from the snapshot"
			  : ret		 ? "state of the wrong size"
					 : serial_state_error(&st);
	if (why) {
		snprintf(err, errlen, "serial: %s", why);
		return ret ? ret : -EINVAL;
	}
	pthread_mutex_lock(&s->lock);
	s->ier = st.ier;
	s->lcr = st.lcr;
	s->mcr = st.mcr;
	s->lsr = st.lsr;
	s->msr = st.msr;
	s->scr = st.scr;
	s->dll = st.dll;
	s->dlm = st.dlm;
	s->fcr = st.fcr;
	s->thri_pending = st.thri_pending;
	s->irq_level = st.irq_level;
	memcpy(s->rx, st.rx, sizeof(s->rx));
	s->rx_head = 0;
	s->rx_count = st.rx_count;
	s->rx_space_wanted = false; /* the new console has paused nothing */
	pthread_mutex_unlock(&s->lock);
	return 0;
}
