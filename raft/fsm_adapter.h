/* Adapts a struct consensus_fsm to canonical/raft's struct raft_fsm. */
#ifndef SHOAL_RAFT_FSM_ADAPTER_H
#define SHOAL_RAFT_FSM_ADAPTER_H

#include <raft.h>

#include "raft/fsm.h"

struct fsm_adapter {
	struct raft_fsm fsm; /* hand &a->fsm to raft_init or raft_fixture_grow */
	struct consensus_fsm ops;
	struct raft *raft; /* set once raft is initialised; used to learn entry indexes */
};

/* Fill @a so that raft's calls reach @ops. Set @a->raft once the struct raft
 * exists (after raft_init, or raft_fixture_get after raft_fixture_grow). */
void fsm_adapter_init(struct fsm_adapter *a, const struct consensus_fsm *ops);

#endif
