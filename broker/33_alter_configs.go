package broker

// AlterConfigs (key 33), versions 0-2.
//
// Behaviour: Kafka's older, non-incremental config change (what kafka-python's and
// librdkafka's alter_configs send): each resource's configs become exactly the ones given —
// a topic's overrides, or a broker resource's dynamic configs ("" the cluster-wide default,
// this broker's id its own) — and every other one is deleted. It runs as the
// IncrementalAlterConfigs it amounts to (SET each given config, DELETE the others the
// resource has in this broker's image), so preprocessing, validation, errors and effects are
// IncrementalAlterConfigs' (see 44_incremental_alter_configs.go). What differs from Kafka:
// nothing a client can observe, except that a change committed between this broker's image
// and the controller's decision may survive (Kafka's AlterConfigs is racy in the same way,
// which is why it is deprecated).

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

func handleAlterConfigs(c *conn, req *request) (kmsg.Response, error) {
	r := req.msg.(*kmsg.AlterConfigsRequest)
	img := c.b.cl.ctl.Image()
	ir := kmsg.NewPtrIncrementalAlterConfigsRequest()
	ir.ValidateOnly = r.ValidateOnly
	for _, rr := range r.Resources {
		ires := kmsg.NewIncrementalAlterConfigsRequestResource()
		ires.ResourceType, ires.ResourceName = rr.ResourceType, rr.ResourceName
		given := map[string]bool{}
		for _, cfg := range rr.Configs {
			op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
			op.Name, op.Value, op.Op = cfg.Name, cfg.Value, kmsg.IncrementalAlterConfigOpSet
			ires.Configs = append(ires.Configs, op)
			given[cfg.Name] = true
		}
		var current map[string]string
		switch rr.ResourceType {
		case kmsg.ConfigResourceTypeTopic:
			if t := img.Topics[rr.ResourceName]; t != nil {
				current = t.Configs
			}
		case kmsg.ConfigResourceTypeBroker:
			current = img.BrokerConfigs[rr.ResourceName]
		}
		for _, k := range sortedKeys(current) {
			if !given[k] {
				op := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
				op.Name, op.Op = k, kmsg.IncrementalAlterConfigOpDelete
				ires.Configs = append(ires.Configs, op)
			}
		}
		ir.Resources = append(ir.Resources, ires)
	}
	iresp := c.b.cl.alterConfigs(c.controllerPlane, ir)
	resp := r.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, sr := range iresp.Resources {
		out := kmsg.NewAlterConfigsResponseResource()
		out.ResourceType, out.ResourceName = sr.ResourceType, sr.ResourceName
		out.ErrorCode, out.ErrorMessage = sr.ErrorCode, sr.ErrorMessage
		resp.Resources = append(resp.Resources, out)
	}
	return resp, nil
}
