import {type NginxServer, startNginx} from './nginx.js'

/**
 * nginx in front of a registry with a per-connection rate limit that bites.
 * limit_rate does not slow responses proxied with `proxy_buffering off` (the
 * default of startNginx's proxyTo), so the registry API gets a location of its
 * own with buffering on, in memory only.
 */
export function startThrottledRegistryFront(registryUrl: string, rate: string): Promise<NginxServer> {
  return startNginx({
    proxyTo: registryUrl,
    rateLimit: rate,
    extraServerConfig: [
      'location /v2/ {',
      `  proxy_pass ${registryUrl.replace(/\/+$/, '')};`,
      '  proxy_set_header Host $http_host;',
      '  proxy_http_version 1.1;',
      '  proxy_set_header Connection "";',
      '  proxy_buffering on;',
      '  proxy_max_temp_file_size 0;',
      `  limit_rate ${rate};`,
      '}',
    ].join('\n'),
  })
}
