package kafka

import "maps"

// TokenOptions are the Kafka connector's connection properties, for the JobManager's Kafka
// delegation-token provider (tokens.Endpoint): it obtains the job's token from the cluster
// they name. Its own credential replaces any the properties carry.
func (k *Options) TokenOptions() map[string]string { return maps.Clone(k.Properties) }
