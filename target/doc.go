// Package target is what a run acts on: a cluster and the means to reach, fault and watch it.
// A Target gives the bootstrap list clients dial, the chaos driver that makes faults on it,
// the resolver that reads its metadata when a fault starts, the resource sampler of its
// processes, and Close, which takes down whatever it started.
package target
