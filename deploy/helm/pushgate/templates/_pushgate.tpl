{{/*
Names and labels.
*/}}
{{- define "pushgate.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "pushgate.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "pushgate.selectorLabels" -}}
app.kubernetes.io/name: {{ include "pushgate.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "pushgate.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "pushgate.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | trunc 63 | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: gateway
{{- end -}}

{{- define "pushgate.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/*
pushgate.durationMs turns a Go duration of hours, minutes, seconds and
milliseconds ("5s", "1m30s", "500ms", "1h", "0") into whole milliseconds.
Anything else (fractions, "us", a bare number) fails, naming the value.
Call with (list "drainDelay" .Values.drainDelay).
*/}}
{{- define "pushgate.durationMs" -}}
{{- $name := index . 0 -}}
{{- $v := index . 1 | toString -}}
{{- $re := "^(?:([0-9]{1,6})h)?(?:([0-9]{1,6})m)?(?:([0-9]{1,7})s)?(?:([0-9]{1,9})ms)?$" -}}
{{- if eq $v "0" -}}
0
{{- else if or (eq $v "") (not (regexMatch $re $v)) -}}
{{- fail (printf "%s %q is not a duration: write it as pushgate's flags take it, in h, m, s and ms, e.g. \"5s\", \"1m30s\" or \"500ms\"" $name $v) -}}
{{- else -}}
{{- $h := regexReplaceAll $re $v "${1}" | default "0" | atoi -}}
{{- $m := regexReplaceAll $re $v "${2}" | default "0" | atoi -}}
{{- $s := regexReplaceAll $re $v "${3}" | default "0" | atoi -}}
{{- $ms := regexReplaceAll $re $v "${4}" | default "0" | atoi -}}
{{- add (mul $h 3600000) (mul $m 60000) (mul $s 1000) $ms -}}
{{- end -}}
{{- end -}}

{{/*
pushgate.port is the port of a listen address (":8080", "0.0.0.0:8080",
"[::]:9090"). An address the kubelet and other pods cannot reach (loopback)
or without a port fails. Call with (list "addr" .Values.addr).
*/}}
{{- define "pushgate.port" -}}
{{- $name := index . 0 -}}
{{- $addr := index . 1 | toString -}}
{{- if not (regexMatch "^(\\[[0-9a-fA-F:.]*\\]|[^:\\[\\]]*):[0-9]{1,5}$" $addr) -}}
{{- fail (printf "%s %q: want a listen address with a port, e.g. \":8080\"" $name $addr) -}}
{{- end -}}
{{- $host := regexReplaceAll ":[0-9]+$" $addr "" -}}
{{- if or (eq $host "localhost" "[::1]") (hasPrefix "127." $host) -}}
{{- fail (printf "%s %q listens on loopback only: probes, the Service and Prometheus reach the pod's own address; use \":%s\"" $name $addr (regexFind "[0-9]+$" $addr)) -}}
{{- end -}}
{{- $port := regexFind "[0-9]+$" $addr | atoi -}}
{{- if or (lt $port 1) (gt $port 65535) -}}
{{- fail (printf "%s %q: the port must be between 1 and 65535" $name $addr) -}}
{{- end -}}
{{- $port -}}
{{- end -}}

{{/*
pushgate.envValue writes a config value as the environment takes it: YAML
numbers are float64 to templates, so a whole one is written without an
exponent (1000000, not 1e+06).
*/}}
{{- define "pushgate.envValue" -}}
{{- if and (kindIs "float64" .) (eq (float64 (int64 .)) .) -}}
{{- int64 . | toString -}}
{{- else -}}
{{- toString . -}}
{{- end -}}
{{- end -}}

{{/*
pushgate.secretFlags lists the flags that carry a secret. The chart gives
them only as files (PUSHGATE_<NAME>_FILE) from secrets.existingSecret,
never as values in the pod spec.
*/}}
{{- define "pushgate.secretFlags" -}}
secret previous-secret api-key api-token admin-token admin-password webhook-secret webhook-client-secret webhook-header relay-secret redis-url redis-password sim-control-token
{{- end -}}

{{/*
pushgate.chartFlags lists the flags the chart sets from values of its own;
config may not set them.
*/}}
{{- define "pushgate.chartFlags" -}}
{{- dict "addr" "addr" "metrics-addr" "metrics.addr" "upstream" "upstream" "redis-url" "redis.url (or secrets.keys.redis-url)" "relay-dir" "relay.dir" "drain-delay" "drainDelay" "shutdown-grace" "shutdownGrace" "tls-cert" "tls.secretName" "tls-key" "tls.secretName" "redis-cluster" "redis.cluster" "redis-ca" "redis.tls.secretName" "redis-cert" "redis.tls.clientCertificate" "redis-key" "redis.tls.clientCertificate" "redis-tls-server-name" "redis.tls.serverName" | toJson -}}
{{- end -}}

{{/*
pushgate.settings checks the values against each other and returns, as
JSON, what the templates derive from them: ports, replicas, the grace
period, whether the node is one of a cluster. Every template that needs
one of these reads it from here, so the checks run wherever the chart is
rendered.
*/}}
{{- define "pushgate.settings" -}}
{{- $v := .Values -}}
{{- $secretFlags := splitList " " (include "pushgate.secretFlags" .) -}}
{{- $chartFlags := include "pushgate.chartFlags" . | fromJson -}}
{{- $keys := $v.secrets.keys | default dict -}}
{{- range $flag, $key := $keys -}}
{{- if not (has $flag $secretFlags) -}}
{{- fail (printf "secrets.keys.%s: not a secret flag of pushgate; the secret flags are %s" $flag (join ", " $secretFlags)) -}}
{{- end -}}
{{- if not $key -}}
{{- fail (printf "secrets.keys.%s: name the key of secrets.existingSecret that holds it" $flag) -}}
{{- end -}}
{{- end -}}
{{- if and $keys (not $v.secrets.existingSecret) -}}
{{- fail "secrets.keys needs secrets.existingSecret: the name of the Secret that holds those keys" -}}
{{- end -}}
{{- if and $v.secrets.existingSecret (not $keys) -}}
{{- fail (printf "secrets.existingSecret %q is set but secrets.keys names none of its keys" $v.secrets.existingSecret) -}}
{{- end -}}
{{- range $flag, $value := $v.config -}}
{{- if not (regexMatch "^[a-z0-9]+(-[a-z0-9]+)*$" $flag) -}}
{{- fail (printf "config.%s: write a pushgate flag's name without its dash, e.g. poll-interval" $flag) -}}
{{- end -}}
{{- if and (has $flag $secretFlags) (not (kindIs "invalid" $value)) -}}
{{- fail (printf "config.%s: a secret; give it from secrets.existingSecret with secrets.keys.%s, so it never shows in the pod spec" $flag $flag) -}}
{{- end -}}
{{- if and (hasKey $chartFlags $flag) (not (kindIs "invalid" $value)) -}}
{{- fail (printf "config.%s: the chart sets -%s; set %s instead" $flag $flag (get $chartFlags $flag)) -}}
{{- end -}}
{{- end -}}
{{- if and $v.redis.url (hasKey $keys "redis-url") -}}
{{- fail "redis.url and secrets.keys.redis-url: give the Redis URL once" -}}
{{- end -}}
{{- $redis := or $v.redis.url (hasKey $keys "redis-url") -}}
{{- $hpa := $v.hpa.enabled -}}
{{- $replicas := int $v.replicaCount -}}
{{- $minReplicas := $replicas -}}
{{- if $hpa -}}
{{- $minReplicas = int $v.hpa.minReplicas -}}
{{- if lt (int $v.hpa.maxReplicas) $minReplicas -}}
{{- fail (printf "hpa.maxReplicas (%d) is below hpa.minReplicas (%d)" (int $v.hpa.maxReplicas) $minReplicas) -}}
{{- end -}}
{{- if and (gt (int $v.hpa.maxReplicas) 1) (not $redis) -}}
{{- fail (printf "hpa.enabled with hpa.maxReplicas %d needs Redis: the nodes of a cluster share one Redis; set redis.url or secrets.keys.redis-url (see docs/scaling.md)" (int $v.hpa.maxReplicas)) -}}
{{- end -}}
{{- if and $v.hpa.targetCPUUtilizationPercentage (not ((($v.resources).requests).cpu)) -}}
{{- fail "hpa.targetCPUUtilizationPercentage is a share of resources.requests.cpu: set resources.requests.cpu" -}}
{{- end -}}
{{- if and (not $v.hpa.targetCPUUtilizationPercentage) (not $v.hpa.metrics) -}}
{{- fail "hpa.enabled needs something to scale on: hpa.targetCPUUtilizationPercentage, or hpa.metrics" -}}
{{- end -}}
{{- end -}}
{{- if and (gt $replicas 1) (not $hpa) (not $redis) -}}
{{- fail (printf "replicaCount %d needs Redis: the nodes of a cluster share one Redis; set redis.url or secrets.keys.redis-url (see docs/scaling.md)" $replicas) -}}
{{- end -}}
{{- if $redis -}}
{{- if not $v.upstream -}}
{{- fail "Redis needs upstream: the nodes of a cluster share one real upstream (pushgate refuses -redis-url without -upstream); the built-in simulator runs on a single node" -}}
{{- end -}}
{{- if not (hasKey $keys "secret") -}}
{{- fail "Redis needs the secret: every node must verify the tokens the others issue (pushgate refuses -redis-url without -secret); set secrets.keys.secret" -}}
{{- end -}}
{{- if $v.relay.dir -}}
{{- fail "relay.dir is unused with Redis: a cluster keeps the relay's queue in Redis; leave relay.dir empty" -}}
{{- end -}}
{{- end -}}
{{- if $v.upstream -}}
{{- if not (regexMatch "^https?://[^/?#]+" $v.upstream) -}}
{{- fail (printf "upstream %q: want the upstream's base URL, e.g. https://demo-api.incodesmile.com" $v.upstream) -}}
{{- end -}}
{{- end -}}
{{- $drainMs := include "pushgate.durationMs" (list "drainDelay" $v.drainDelay) | atoi -}}
{{- $graceMs := include "pushgate.durationMs" (list "shutdownGrace" $v.shutdownGrace) | atoi -}}
{{- if eq $graceMs 0 -}}
{{- fail "shutdownGrace must be above 0" -}}
{{- end -}}
{{- if ge $drainMs $graceMs -}}
{{- fail (printf "drainDelay (%s) must be below shutdownGrace (%s): pushgate refuses -drain-delay at or above -shutdown-grace" $v.drainDelay $v.shutdownGrace) -}}
{{- end -}}
{{- /* pushgate exits within drainDelay + shutdownGrace + 1 s of SIGTERM. */ -}}
{{- $needed := div (add $drainMs $graceMs 1000 999) 1000 -}}
{{- $grace := add $needed 4 -}}
{{- if not (kindIs "invalid" $v.terminationGracePeriodSeconds) -}}
{{- $grace = int $v.terminationGracePeriodSeconds -}}
{{- if lt $grace $needed -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) is shorter than drainDelay + shutdownGrace + 1s (%ds): Kubernetes would kill pushgate in the middle of its shutdown; raise it, or leave it empty to derive it" $grace $needed) -}}
{{- end -}}
{{- end -}}
{{- if and $v.relay.dir (not (hasPrefix "/" $v.relay.dir)) -}}
{{- fail (printf "relay.dir %q: want an absolute path, e.g. /var/lib/pushgate/relay" $v.relay.dir) -}}
{{- end -}}
{{- if and $v.relay.dir (has $v.relay.dir (list "/" "/tmp" $v.secrets.mountPath $v.tls.mountPath)) -}}
{{- fail (printf "relay.dir %q: pick a directory of its own, e.g. /var/lib/pushgate/relay" $v.relay.dir) -}}
{{- end -}}
{{- $httpPort := include "pushgate.port" (list "addr" $v.addr) | atoi -}}
{{- $metricsPort := 0 -}}
{{- if $v.metrics.addr -}}
{{- $metricsPort = include "pushgate.port" (list "metrics.addr" $v.metrics.addr) | atoi -}}
{{- if eq $metricsPort $httpPort -}}
{{- fail (printf "metrics.addr %q and addr %q share a port: the metrics listener needs one of its own" $v.metrics.addr $v.addr) -}}
{{- end -}}
{{- end -}}
{{- $tls := ne ($v.tls.secretName | default "") "" -}}
{{- $probePort := ternary "metrics" "http" (gt $metricsPort 0) -}}
{{- $probeScheme := ternary "HTTPS" "HTTP" (and $tls (eq $probePort "http")) -}}
{{- dict "httpPort" $httpPort "metricsPort" $metricsPort "replicas" $replicas "minReplicas" $minReplicas "cluster" (ternary true false (not (not $redis))) "hpa" (ternary true false (not (not $hpa))) "terminationGracePeriodSeconds" $grace "probePort" $probePort "probeScheme" $probeScheme "tls" $tls | toJson -}}
{{- end -}}
