// Package service is the daemon's service layer (docs/services.md): it
// names each kernel-attested agent as a service from its identity and the
// policy file, holds the policy in force (SIGHUP reloads it, keeping the old
// one on error), plans recoveries for the recovery runner (the rule's
// argument list or none, placeholders, the service's restart budget),
// schedules retries for agents that stay silent, and counts stalls and
// recovery outcomes per service under a bounded number of label values.
//
// Registry.Services and budget.Book.Snapshot are the read-only views the
// metrics exporter and the control socket use; the tracker's AgentView
// carries each agent's *identity.Info (its service name included).
package service
