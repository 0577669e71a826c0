variable "model_uuid" {
  description = "UUID of the Kubernetes model to deploy Falcosidekick in."
  type        = string
}

variable "app_name" {
  description = "Name of the Falcosidekick application."
  type        = string
  default     = "falcosidekick-k8s"
}

variable "channel" {
  description = "Charmhub channel of the falcosidekick-k8s charm."
  type        = string
  default     = "latest/stable"
}

variable "revision" {
  description = "Charm revision to deploy; null deploys the channel's latest."
  type        = number
  default     = null
}

variable "base" {
  description = "Base of the charm container."
  type        = string
  default     = "ubuntu@24.04"
}

variable "units" {
  description = "Number of Falcosidekick units; every unit serves alerts behind the one Service."
  type        = number
  default     = 1
}

variable "config" {
  description = "Charm config options (see the charm's reference documentation)."
  type        = map(string)
  default     = {}
}

variable "resources" {
  description = "Charm resources, e.g. { falcosidekick-image = \"<registry>/falcosidekick:2.34.1\" } for a mirror."
  type        = map(string)
  default     = {}
}
