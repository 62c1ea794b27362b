import { FastifyInstance } from 'fastify';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { openApiDocument } from './openapi';

/**
 * The status page's CSP, with the stylesheets Swagger UI links from this origin: no inline
 * script (Swagger UI has none), nothing from another origin, no framing.
 */
export const DOCS_CSP =
  "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/**
 * The rendered API reference at /docs: Swagger UI (@fastify/swagger-ui, its assets served from
 * the package, nothing fetched from elsewhere) over the same OpenAPI document as /v1/openapi.json.
 * Public like the status page; "Try it out" sends the token given to Authorize, under the API's
 * usual rules.
 */
export function registerDocsPage(app: FastifyInstance): void {
  void app.register(swagger, { mode: 'static', specification: { document: openApiDocument() as never } });
  void app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: DOCS_CSP,
    uiConfig: { docExpansion: 'list', deepLinking: true, validatorUrl: null } as never,
  });
}
