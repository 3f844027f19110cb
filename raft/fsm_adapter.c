/* Adapts a struct consensus_fsm to canonical/raft's struct raft_fsm.
 *
 * raft 0.15's apply callback is not told the entry's index. raft applies
 * entries strictly in order and bumps last_applied only after each apply
 * returns, so during apply the entry's index is raft_last_applied() + 1. */
#include "raft/fsm_adapter.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

size_t fsm_frame_size(size_t len)
{
	return 8 + (len + 7) / 8 * 8;
}

void fsm_frame_write(void *out, const void *data, size_t len)
{
	unsigned char *p = out;
	uint64_t n = len;

	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(n >> (8 * i));
	if (len > 0)
		memcpy(p + 8, data, len);
	memset(p + 8 + len, 0, fsm_frame_size(len) - 8 - len);
}

int fsm_frame_read(const void *buf, size_t size, const void **data, size_t *len)
{
	const unsigned char *p = buf;
	uint64_t n = 0;

	if (size < 8 || size % 8 != 0)
		return -1;
	for (int i = 0; i < 8; i++)
		n |= (uint64_t)p[i] << (8 * i);
	if (n > size - 8 || fsm_frame_size((size_t)n) != size)
		return -1;
	*data = p + 8;
	*len = (size_t)n;
	return 0;
}

static int adapter_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct fsm_adapter *a = fsm->data;
	uint64_t index = raft_last_applied(a->raft) + 1;
	const void *data;
	size_t len;

	/* A malformed frame reaches the FSM as an empty command, which it
	 * rejects without stopping raft. */
	if (fsm_frame_read(buf->base, buf->len, &data, &len) != 0) {
		data = buf->base;
		len = 0;
	}
	/* The FSM fails only when out of memory, having changed nothing. */
	return a->ops.apply(a->ops.arg, index, data, len, result) != 0 ? RAFT_NOMEM : 0;
}

static int adapter_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
	struct fsm_adapter *a = fsm->data;
	struct raft_buffer *b;
	void *data = NULL;
	size_t len = 0;
	int rv;

	rv = a->ops.snapshot(a->ops.arg, &data, &len);
	if (rv != 0)
		return RAFT_NOMEM;
	b = raft_malloc(sizeof *b);
	if (b == NULL)
		goto err_data;
	b->base = raft_malloc(len > 0 ? len : 1);
	if (b->base == NULL)
		goto err_b;
	if (len > 0)
		memcpy(b->base, data, len);
	b->len = len;
	free(data);
	*bufs = b;
	*n_bufs = 1;
	return 0;

err_b:
	raft_free(b);
err_data:
	free(data);
	return RAFT_NOMEM;
}

static int adapter_snapshot_finalize(struct raft_fsm *fsm, struct raft_buffer *bufs[],
				     unsigned *n_bufs)
{
	(void)fsm;
	for (unsigned i = 0; i < *n_bufs; i++)
		raft_free((*bufs)[i].base);
	raft_free(*bufs);
	*bufs = NULL;
	*n_bufs = 0;
	return 0;
}

static int adapter_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
	struct fsm_adapter *a = fsm->data;
	int rv = a->ops.restore(a->ops.arg, buf->base, buf->len);

	if (rv != 0)
		return RAFT_MALFORMED;
	/* raft hands ownership of the buffer to restore. */
	raft_free(buf->base);
	return 0;
}

void fsm_adapter_init(struct fsm_adapter *a, const struct consensus_fsm *ops)
{
	memset(a, 0, sizeof *a);
	a->ops = *ops;
	a->fsm.version = 2;
	a->fsm.data = a;
	a->fsm.apply = adapter_apply;
	a->fsm.snapshot = adapter_snapshot;
	a->fsm.restore = adapter_restore;
	a->fsm.snapshot_finalize = adapter_snapshot_finalize;
}
