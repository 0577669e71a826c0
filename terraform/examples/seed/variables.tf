variable "machine_cloud" {
  description = "Name of the machine cloud (e.g. localhost for LXD) for the hosts model."
  type        = string
  default     = "localhost"
}

variable "k8s_cloud" {
  description = "Name of the Kubernetes cloud for the falcosidekick model."
  type        = string
}

variable "host_units" {
  description = "Number of principal machines to watch with Falco."
  type        = number
  default     = 2
}

variable "falco_channel" {
  description = "Charmhub channel of falco."
  type        = string
  default     = "latest/stable"
}

variable "falcosidekick_channel" {
  description = "Charmhub channel of falcosidekick-k8s."
  type        = string
  default     = "latest/stable"
}

variable "loki_offer_url" {
  description = "COS Loki offer (`juju offer loki:logging loki`), e.g. admin/cos.loki."
  type        = string
}

variable "prometheus_offer_url" {
  description = "COS Prometheus offer (`juju offer prometheus:receive-remote-write prometheus`)."
  type        = string
}

variable "grafana_offer_url" {
  description = "COS Grafana offer (`juju offer grafana:grafana-dashboard grafana`)."
  type        = string
}
