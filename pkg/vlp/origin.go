package vlp

// Origin is the trust class of a beat: how the observer knows who sent it.
// Higher ranks are stronger.
type Origin uint8

// Origins in rank order (low to high).
const (
	OriginNetworkUnverified         Origin = 0
	OriginSocketModeOnly            Origin = 1
	OriginOperatorAttestedTransport Origin = 2
	OriginKernelAttested            Origin = 3
)

// String returns the protocol name of o (docs/vlp.md §4).
func (o Origin) String() string {
	switch o {
	case OriginNetworkUnverified:
		return "NetworkUnverified"
	case OriginSocketModeOnly:
		return "SocketModeOnly"
	case OriginOperatorAttestedTransport:
		return "OperatorAttestedTransport"
	case OriginKernelAttested:
		return "KernelAttested"
	}
	return "Unknown"
}

// RecoveryEligible reports whether beats of this origin may ever trigger a
// recovery action.
func (o Origin) RecoveryEligible() bool {
	return o == OriginKernelAttested || o == OriginOperatorAttestedTransport
}
