#!/usr/bin/env bash
# Get tokens for Berth's API as EDB BigAnimal's get-token.sh gets them for BigAnimal's: the
# device flow (open the printed URL, sign in, approve), or a refresh. Needs curl and jq.
#
# Berth's URL comes from BERTH_URL (default http://127.0.0.1:8080); everything else is read
# from its /api/v3/auth/provider, like the original reads BigAnimal's.
set -euo pipefail

usage() {
  cat <<'USAGE'
Get Tokens for Berth API

Usage:
  ./get-token.sh [flags] [options]

      -ft, --freetrial                   [optional] accepted for BigAnimal compatibility; Berth has no free trial
      -o,  --format  json | plain        [optional] output format, default 'json'
      -r,  --refresh <refresh_token>     [optional] query for tokens again by the given refresh_token
                                           this revokes and rotates the given refresh token,
                                           please remember the newly returned refresh_token for
                                           the next use
      -h,  --help                         show this help message

Environment: BERTH_URL, the server (default http://127.0.0.1:8080).
Reference: docs/compatibility.md
USAGE
}

format=json
refresh=
while (($#)); do
  case $1 in
    -ft | --freetrial) shift ;;
    -o | --format)
      [[ $# -ge 2 ]] || { usage >&2; exit 2; }
      format=$2; shift 2 ;;
    -r | --refresh)
      [[ $# -ge 2 && -n $2 ]] || { usage >&2; exit 2; }
      refresh=$2; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
  esac
done
[[ $format == json || $format == plain ]] || { echo "format must be json or plain" >&2; exit 2; }
for tool in curl jq; do
  command -v "$tool" >/dev/null || { echo "please install $tool" >&2; exit 1; }
done

base=${BERTH_URL:-http://127.0.0.1:8080}
provider=$(curl -sSf "${base%/}/api/v3/auth/provider")
client_id=$(jq -r .clientId <<<"$provider")
issuer=$(jq -r .issuerUri <<<"$provider")
scope=$(jq -r .scope <<<"$provider")
audience=$(jq -r .audience <<<"$provider")

# POSTs a form to the token endpoint; prints the answer, fails on an error answer.
token_request() {
  curl -sS --request POST --url "$issuer/oauth/token" \
    --header "content-type: application/x-www-form-urlencoded" "$@"
}

show() {
  if [[ $format == json ]]; then
    jq '{access_token, refresh_token, scope, expires_in, token_type}' <<<"$1"
  else
    printf '####### Access Token ################\n%s\n\n' "$(jq -r .access_token <<<"$1")"
    printf '####### Refresh Token ###############\n%s\n\n' "$(jq -r .refresh_token <<<"$1")"
    printf '#####   Expires In Seconds ##########\n%s\n' "$(jq -r .expires_in <<<"$1")"
  fi
}

if [[ -n $refresh ]]; then
  answer=$(token_request --data "grant_type=refresh_token" --data-urlencode "client_id=$client_id" \
    --data-urlencode "refresh_token=$refresh")
  if [[ $(jq -r '.access_token // empty' <<<"$answer") == "" ]]; then
    echo "refreshing failed: $(jq -r '.error_description // .error // .' <<<"$answer")" >&2
    exit 1
  fi
  show "$answer"
  exit 0
fi

device=$(curl -sS --request POST --url "$issuer/oauth/device/code" \
  --header "content-type: application/x-www-form-urlencoded" \
  --data-urlencode "client_id=$client_id" --data-urlencode "scope=$scope" \
  --data-urlencode "audience=$audience")
device_code=$(jq -r '.device_code // empty' <<<"$device")
[[ -n $device_code ]] || { echo "requesting a device code failed: $device" >&2; exit 1; }
interval=$(jq -r '.interval // 5' <<<"$device")
expires_in=$(jq -r '.expires_in // 900' <<<"$device")
echo "Please login to"
jq -r '.verification_uri_complete // .verification_uri' <<<"$device"
echo "with your Berth account"
read -r -p "Have you finished the login successfully? (y/N) " confirmed || confirmed=
[[ $confirmed =~ ^[yY] ]] || { echo "not signed in" >&2; exit 1; }

deadline=$((SECONDS + expires_in))
while :; do
  answer=$(token_request --data "grant_type=urn:ietf:params:oauth:grant-type:device_code" \
    --data-urlencode "device_code=$device_code" --data-urlencode "client_id=$client_id")
  case $(jq -r '.error // empty' <<<"$answer") in
    "") show "$answer"; exit 0 ;;
    authorization_pending) ;;
    slow_down) interval=$((interval + 5)) ;;
    *) echo "signing in failed: $(jq -r '.error_description // .error' <<<"$answer")" >&2; exit 1 ;;
  esac
  ((SECONDS < deadline)) || { echo "the device code expired" >&2; exit 1; }
  sleep "$interval"
done
