package broker

// SyncGroup (key 14), versions 0-5.
//
// Behaviour: in CompletingRebalance the response is held until the leader's SyncGroup brings
// the assignment, which is stored in __consumer_offsets before anyone is answered; in Stable
// the member's current assignment is returned at once. Errors as in Kafka: UNKNOWN_MEMBER_ID,
// FENCED_INSTANCE_ID, ILLEGAL_GENERATION, INCONSISTENT_GROUP_PROTOCOL (v5+ protocol type and
// name checks), REBALANCE_IN_PROGRESS. Differences from Kafka: a failed metadata write is
// logged and the assignment is still handed out.

import (
	"bytes"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleSyncGroup(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.SyncGroupRequest)
	resp := r.ResponseKind().(*kmsg.SyncGroupResponse)
	b := c.b
	fail := func(err *kerr.Error) (kmsg.Response, error) {
		resp.ErrorCode = err.Code
		resp.MemberAssignment = []byte{}
		return resp, nil
	}
	if r.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	sr := group.SyncRequest{MemberID: r.MemberID, Generation: r.Generation, ProtocolType: r.ProtocolType, Protocol: r.Protocol,
		Assignments: map[string][]byte{}}
	if r.InstanceID != nil {
		sr.InstanceID = *r.InstanceID
	}
	for _, a := range r.GroupAssignment {
		// Copy: decoded bytes alias the pooled request frame.
		sr.Assignments[a.MemberID] = bytes.Clone(a.MemberAssignment)
	}
	ch := make(chan group.SyncResult, 1)
	reply := func(res group.SyncResult) {
		select {
		case ch <- res:
		default:
		}
	}
	if err := b.groups.do(r.Group, false, func(g *group.Group, now time.Time) { g.Sync(now, sr, reply) }); err != nil {
		return fail(err)
	}
	var res group.SyncResult
	select {
	case res = <-ch:
	case <-b.stop:
		return fail(kerr.NotCoordinator)
	}
	c.log.Debug("sync group", "group", r.Group, "version", req.version, "member", r.MemberID, "generation", r.Generation,
		"assignments", len(r.GroupAssignment), "err", res.Err, "assignment_bytes", len(res.Assignment))
	if res.Err != nil {
		return fail(res.Err)
	}
	resp.ProtocolType = &res.ProtocolType
	resp.Protocol = &res.Protocol
	resp.MemberAssignment = res.Assignment
	if resp.MemberAssignment == nil {
		resp.MemberAssignment = []byte{}
	}
	return resp, nil
}
