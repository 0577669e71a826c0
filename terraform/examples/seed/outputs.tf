output "falcosidekick_offer_url" {
  description = "Offer through which other machine models' Falco applications can send alerts."
  value       = juju_offer.falcosidekick.url
}

output "models" {
  description = "UUIDs of the models this example created."
  value = {
    hosts    = juju_model.hosts.uuid
    sidekick = juju_model.sidekick.uuid
  }
}
