output "app_name" {
  description = "Name of the deployed Falcosidekick application."
  value       = juju_application.falcosidekick.name
}

output "requires" {
  description = "Endpoints Falcosidekick requires, by purpose."
  value = {
    certificates   = "certificates"
    ingress        = "ingress"
    send_loki_logs = "send-loki-logs"
    logging        = "logging"
    alertmanager   = "alertmanager"
  }
}

output "provides" {
  description = "Endpoints Falcosidekick provides, by purpose."
  value = {
    http_endpoint     = "http-endpoint"
    metrics_endpoint  = "metrics-endpoint"
    grafana_dashboard = "grafana-dashboard"
  }
}
