resource "juju_application" "falcosidekick" {
  name       = var.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "falcosidekick-k8s"
    channel  = var.channel
    revision = var.revision
    base     = var.base
  }

  units     = var.units
  config    = var.config
  resources = var.resources
}
