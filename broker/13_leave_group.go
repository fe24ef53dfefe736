package broker

// LeaveGroup (key 13), versions 0-5.
//
// Behaviour: removes members and rebalances the rest. v0-2 name one member id; v3+ a batch of
// members, each by member id or by group.instance.id (static members), each answered with its
// own error (UNKNOWN_MEMBER_ID, FENCED_INSTANCE_ID). Same as Kafka.

import (
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleLeaveGroup(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.LeaveGroupRequest)
	resp := r.ResponseKind().(*kmsg.LeaveGroupResponse)
	if req.version < 3 {
		var lerr *kerr.Error
		err := c.b.groups.do(r.Group, false, func(g *group.Group, now time.Time) { lerr = g.Leave(now, r.MemberID, "") })
		if err == nil {
			err = lerr
		}
		if err != nil {
			resp.ErrorCode = err.Code
		}
		return resp, nil
	}
	c.log.Debug("leave group", "group", r.Group, "version", req.version, "members", len(r.Members))
	errs := make([]*kerr.Error, len(r.Members))
	err := c.b.groups.do(r.Group, false, func(g *group.Group, now time.Time) {
		for i, m := range r.Members {
			instance := ""
			if m.InstanceID != nil {
				instance = *m.InstanceID
			}
			errs[i] = g.Leave(now, m.MemberID, instance)
		}
	})
	if err != nil {
		resp.ErrorCode = err.Code
		return resp, nil
	}
	for i, m := range r.Members {
		rm := kmsg.NewLeaveGroupResponseMember()
		rm.MemberID, rm.InstanceID = m.MemberID, m.InstanceID
		if errs[i] != nil {
			rm.ErrorCode = errs[i].Code
		}
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}
