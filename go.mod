module github.com/execfaild/execfaild

go 1.26.8

require (
	github.com/BurntSushi/toml v1.6.0
	github.com/RackSec/srslog v0.0.0-20180709174129-a4725f04ec91
	github.com/cilium/ebpf v0.22.0
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/hashicorp/go-cleanhttp v0.5.2
	github.com/hashicorp/go-retryablehttp v0.7.8
	golang.org/x/sys v0.50.0
)

tool github.com/cilium/ebpf/cmd/bpf2go
