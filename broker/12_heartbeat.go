package broker

// Heartbeat (key 12), versions 0-4.
//
// Behaviour: keeps a member's session alive. REBALANCE_IN_PROGRESS while the group is
// PreparingRebalance (the member must rejoin); UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID and
// ILLEGAL_GENERATION as in Kafka. Same as Kafka.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleHeartbeat(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.HeartbeatRequest)
	resp := r.ResponseKind().(*kmsg.HeartbeatResponse)
	instance := ""
	if r.InstanceID != nil {
		instance = *r.InstanceID
	}
	var herr *kerr.Error
	err := c.b.groups.do(r.Group, false, func(g *group.Group, now time.Time) {
		herr = g.Heartbeat(now, r.MemberID, instance, r.Generation)
	})
	if err == nil {
		err = herr
	}
	if err != nil {
		c.log.Debug("heartbeat", "group", r.Group, "member", r.MemberID, "generation", r.Generation, "err", err)
		resp.ErrorCode = err.Code
	}
	return resp, nil
}
