{{/* The image every container runs: repository:tag. */}}
{{- define "buoy.image" -}}
{{- printf "%s:%s" .Values.image.repository (toString .Values.image.tag) -}}
{{- end -}}

{{/* Refuses values buoy would not run with, before anything is installed. */}}
{{- define "buoy.validate" -}}
{{- if not (has .Values.routing (list "bgp" "direct")) -}}
{{- fail (printf "routing must be bgp or direct, got %v" .Values.routing) -}}
{{- end -}}
{{- /* values.schema.json types and bounds every value; this is for a chart rendered without it. */ -}}
{{- $as := int64 .Values.asNumber -}}
{{- if or (lt $as 1) (gt $as 4294967295) (ne (float64 $as) (float64 .Values.asNumber)) -}}
{{- fail (printf "asNumber must be a whole number from 1 to 4294967295, got %v" .Values.asNumber) -}}
{{- end -}}
{{- end -}}
