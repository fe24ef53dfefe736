package broker

// JoinGroup (key 11), versions 2-9.
//
// Behaviour: Kafka's classic group protocol (see package group). A dynamic member's first join
// at v4+ gets MEMBER_ID_REQUIRED and a member id to rejoin with; static members
// (group.instance.id, v5+) join at once and a restart within the session timeout keeps their
// assignment without a rebalance (v9+ tells a rejoining static leader to skip assignment; below
// v9 its rejoin rebalances). The response is held until the rebalance completes: when every
// member has rejoined, or at the rebalance timeout, or after group.initial.rebalance.delay.ms
// for a group that was empty. Session timeouts outside [group.min.session.timeout.ms,
// group.max.session.timeout.ms] get INVALID_SESSION_TIMEOUT. Differences from Kafka: no
// group.max.size; the join reason (v8+) is only logged at debug level.

import (
	"bytes"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/kchaos/kchaos/broker/group"
)

func handleJoinGroup(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.JoinGroupRequest)
	resp := r.ResponseKind().(*kmsg.JoinGroupResponse)
	b := c.b
	resp.Generation = -1
	resp.MemberID = r.MemberID
	fail := func(err *kerr.Error) (kmsg.Response, error) {
		resp.ErrorCode = err.Code
		return resp, nil
	}
	if r.Group == "" {
		return fail(kerr.InvalidGroupID)
	}
	session := time.Duration(r.SessionTimeoutMillis) * time.Millisecond
	if r.SessionTimeoutMillis < int32(b.cfg.propInt("group.min.session.timeout.ms")) || r.SessionTimeoutMillis > int32(b.cfg.propInt("group.max.session.timeout.ms")) {
		return fail(kerr.InvalidSessionTimeout)
	}
	rebalance := time.Duration(r.RebalanceTimeoutMillis) * time.Millisecond
	if rebalance <= 0 {
		rebalance = session
	}
	jr := group.JoinRequest{
		MemberID: r.MemberID, ClientID: req.clientID, ClientHost: c.clientHost(), ProtocolType: r.ProtocolType,
		SessionTimeout: session, RebalanceTimeout: rebalance,
		RequireKnownMemberID: req.version >= 4, SupportsSkipAssignment: req.version >= 9,
		NewMemberID: newMemberID(req.clientID),
	}
	if r.InstanceID != nil {
		jr.InstanceID = *r.InstanceID
	}
	for _, p := range r.Protocols {
		// Copy: decoded bytes alias the pooled request frame.
		jr.Protocols = append(jr.Protocols, group.Protocol{Name: p.Name, Metadata: bytes.Clone(p.Metadata)})
	}
	ch := make(chan group.JoinResult, 1)
	reply := func(res group.JoinResult) {
		select {
		case ch <- res:
		default:
		}
	}
	if err := b.groups.do(r.Group, r.MemberID == "", func(g *group.Group, now time.Time) { g.Join(now, jr, reply) }); err != nil {
		return fail(err)
	}
	var res group.JoinResult
	select {
	case res = <-ch:
	case <-b.stop:
		return fail(kerr.NotCoordinator)
	}
	resp.MemberID = res.MemberID
	c.log.Debug("join group", "group", r.Group, "version", req.version, "member", r.MemberID, "instance", jr.InstanceID,
		"err", res.Err, "generation", res.Generation, "assigned_member", res.MemberID, "leader", res.Leader, "members", len(res.Members))
	if res.Err != nil {
		return fail(res.Err)
	}
	resp.Generation = res.Generation
	resp.ProtocolType = &res.ProtocolType
	resp.Protocol = &res.Protocol
	resp.LeaderID = res.Leader
	resp.SkipAssignment = res.SkipAssignment
	for _, m := range res.Members {
		rm := kmsg.NewJoinGroupResponseMember()
		rm.MemberID = m.ID
		if m.InstanceID != "" {
			id := m.InstanceID
			rm.InstanceID = &id
		}
		rm.ProtocolMetadata = m.Metadata
		resp.Members = append(resp.Members, rm)
	}
	return resp, nil
}

// clientHost is the client's address as Kafka reports it in group descriptions: "/" and the IP.
func (c *conn) clientHost() string {
	host, _, err := net.SplitHostPort(c.nc.RemoteAddr().String())
	if err != nil {
		return "/" + c.nc.RemoteAddr().String()
	}
	return "/" + host
}
