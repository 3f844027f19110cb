/* Adapts a struct consensus_fsm to canonical/raft's struct raft_fsm.
 *
 * raft 0.15's apply callback is not told the entry's index. raft applies
 * entries strictly in order and bumps last_applied only after each apply
 * returns, so during apply the entry's index is raft_last_applied() + 1. */
#include "raft/fsm_adapter.h"

#include <stdlib.h>
#include <string.h>

#include "lib/err.h"

static int adapter_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
	struct fsm_adapter *a = fsm->data;
	uint64_t index = raft_last_applied(a->raft) + 1;

	return a->ops.apply(a->ops.arg, index, buf->base, buf->len, result);
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
