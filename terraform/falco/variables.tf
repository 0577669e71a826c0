variable "model_uuid" {
  description = "UUID of the machine model that holds the principal application Falco attaches to."
  type        = string
}

variable "app_name" {
  description = "Name of the Falco application."
  type        = string
  default     = "falco"
}

variable "channel" {
  description = "Charmhub channel of the falco charm."
  type        = string
  default     = "latest/stable"
}

variable "revision" {
  description = "Charm revision to deploy; null deploys the channel's latest."
  type        = number
  default     = null
}

variable "base" {
  description = "Base of the machines Falco runs on."
  type        = string
  default     = "ubuntu@24.04"
}

variable "config" {
  description = "Charm config options (see the charm's reference documentation)."
  type        = map(string)
  default     = {}
}
