output "app_name" {
  description = "Name of the deployed Falco application."
  value       = juju_application.falco.name
}

output "requires" {
  description = "Endpoints Falco requires, by purpose."
  value = {
    certificates  = "certificates"
    general_info  = "general-info"
    http_endpoint = "http-endpoint"
  }
}

output "provides" {
  description = "Endpoints Falco provides, by purpose."
  value = {
    cos_agent = "cos-agent"
  }
}
