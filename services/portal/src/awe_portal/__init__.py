"""AWE portal: server-rendered pages over the services' HTTP APIs, called with the signed-in
user's token, so what a person sees and may change is exactly what the APIs allow."""
