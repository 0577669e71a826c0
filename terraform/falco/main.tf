# Falco is a subordinate: Juju gives it one unit on every unit of each principal it is
# integrated with over `general-info`, so this module sets no unit count. (Since provider
# 0.19, `units` must be left out for subordinates.)
resource "juju_application" "falco" {
  name       = var.app_name
  model_uuid = var.model_uuid

  charm {
    name     = "falco"
    channel  = var.channel
    revision = var.revision
    base     = var.base
  }

  config = var.config
}
