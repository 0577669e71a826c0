# The whole seed architecture: Falco on every machine of a principal application, its
# alerts over HTTPS to Falcosidekick in a Kubernetes model, and both charms' telemetry through
# OpenTelemetry Collectors into an existing COS (given by its offer URLs).

resource "juju_model" "hosts" {
  name = "falco-hosts"
  cloud {
    name = var.machine_cloud
  }
}

resource "juju_model" "sidekick" {
  name = "falcosidekick"
  cloud {
    name = var.k8s_cloud
  }
}

# --- the Kubernetes side --------------------------------------------------------------

module "falcosidekick" {
  source     = "../../falcosidekick-k8s"
  model_uuid = juju_model.sidekick.uuid
  channel    = var.falcosidekick_channel
}

resource "juju_application" "certificates" {
  name       = "self-signed-certificates"
  model_uuid = juju_model.sidekick.uuid
  charm {
    name = "self-signed-certificates"
  }
}

resource "juju_application" "collector_k8s" {
  name       = "opentelemetry-collector-k8s"
  model_uuid = juju_model.sidekick.uuid
  trust      = true
  charm {
    name = "opentelemetry-collector-k8s"
  }
}

resource "juju_integration" "sidekick_certificates" {
  model_uuid = juju_model.sidekick.uuid
  application {
    name     = module.falcosidekick.app_name
    endpoint = module.falcosidekick.requires.certificates
  }
  application {
    name     = juju_application.certificates.name
    endpoint = "certificates"
  }
}

resource "juju_integration" "sidekick_alerts_to_collector" {
  model_uuid = juju_model.sidekick.uuid
  application {
    name     = module.falcosidekick.app_name
    endpoint = module.falcosidekick.requires.send_loki_logs
  }
  application {
    name     = juju_application.collector_k8s.name
    endpoint = "receive-loki-logs"
  }
}

resource "juju_integration" "sidekick_logs_to_collector" {
  model_uuid = juju_model.sidekick.uuid
  application {
    name     = module.falcosidekick.app_name
    endpoint = module.falcosidekick.requires.logging
  }
  application {
    name     = juju_application.collector_k8s.name
    endpoint = "receive-loki-logs"
  }
}

resource "juju_integration" "sidekick_metrics" {
  model_uuid = juju_model.sidekick.uuid
  application {
    name     = module.falcosidekick.app_name
    endpoint = module.falcosidekick.provides.metrics_endpoint
  }
  application {
    name     = juju_application.collector_k8s.name
    endpoint = "metrics-endpoint"
  }
}

resource "juju_integration" "sidekick_dashboards" {
  model_uuid = juju_model.sidekick.uuid
  application {
    name     = module.falcosidekick.app_name
    endpoint = module.falcosidekick.provides.grafana_dashboard
  }
  application {
    name     = juju_application.collector_k8s.name
    endpoint = "grafana-dashboards-consumer"
  }
}

resource "juju_offer" "falcosidekick" {
  model_uuid       = juju_model.sidekick.uuid
  application_name = module.falcosidekick.app_name
  endpoints        = [module.falcosidekick.provides.http_endpoint]
}

# --- the machine side -----------------------------------------------------------------

resource "juju_application" "principal" {
  name       = "ubuntu"
  model_uuid = juju_model.hosts.uuid
  units      = var.host_units
  charm {
    name = "ubuntu"
    base = "ubuntu@24.04"
  }
}

module "falco" {
  source     = "../../falco"
  model_uuid = juju_model.hosts.uuid
  channel    = var.falco_channel
}

resource "juju_application" "collector" {
  name       = "opentelemetry-collector"
  model_uuid = juju_model.hosts.uuid
  charm {
    name = "opentelemetry-collector"
    base = "ubuntu@24.04"
  }
}

resource "juju_integration" "falco_on_principal" {
  model_uuid = juju_model.hosts.uuid
  application {
    name     = module.falco.app_name
    endpoint = module.falco.requires.general_info
  }
  application {
    name     = juju_application.principal.name
    endpoint = "juju-info"
  }
}

resource "juju_integration" "collector_on_principal" {
  model_uuid = juju_model.hosts.uuid
  application {
    name     = juju_application.collector.name
    endpoint = "juju-info"
  }
  application {
    name     = juju_application.principal.name
    endpoint = "juju-info"
  }
}

resource "juju_integration" "falco_telemetry" {
  model_uuid = juju_model.hosts.uuid
  application {
    name     = module.falco.app_name
    endpoint = module.falco.provides.cos_agent
  }
  application {
    name     = juju_application.collector.name
    endpoint = "cos-agent"
  }
}

resource "juju_integration" "falco_alerts_to_sidekick" {
  model_uuid = juju_model.hosts.uuid
  application {
    name     = module.falco.app_name
    endpoint = module.falco.requires.http_endpoint
  }
  application {
    offer_url = juju_offer.falcosidekick.url
  }
}

# --- both collectors into COS ---------------------------------------------------------

locals {
  # model uuid -> collector application in it
  collectors = {
    hosts    = { model_uuid = juju_model.hosts.uuid, name = juju_application.collector.name }
    sidekick = { model_uuid = juju_model.sidekick.uuid, name = juju_application.collector_k8s.name }
  }
}

resource "juju_integration" "collector_logs_to_loki" {
  for_each   = local.collectors
  model_uuid = each.value.model_uuid
  application {
    name     = each.value.name
    endpoint = "send-loki-logs"
  }
  application {
    offer_url = var.loki_offer_url
  }
}

resource "juju_integration" "collector_metrics_to_prometheus" {
  for_each   = local.collectors
  model_uuid = each.value.model_uuid
  application {
    name     = each.value.name
    endpoint = "send-remote-write"
  }
  application {
    offer_url = var.prometheus_offer_url
  }
}

resource "juju_integration" "collector_dashboards_to_grafana" {
  for_each   = local.collectors
  model_uuid = each.value.model_uuid
  application {
    name     = each.value.name
    endpoint = "grafana-dashboards-provider"
  }
  application {
    offer_url = var.grafana_offer_url
  }
}
