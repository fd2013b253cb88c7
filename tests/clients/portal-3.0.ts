// The portal's grant call through a client that openapi-typescript-codegen
// (which reads OpenAPI 3.0 only) generates from openapi/openapi-3.0.json:
// type-checked with tsc --strict, not run (tour.py and portal.ts cover the calls).
import {
  AccessLevel,
  ApiError,
  GrantStatus,
  GrantsService,
  OpenAPI,
  PrincipalType,
  type Grant,
  type SubmitGrant,
} from "./generated/openapi-3.0";

export async function submit(
  base: string,
  token: string,
  integrationId: string,
  resourceId: string,
): Promise<Grant | string> {
  OpenAPI.BASE = base;
  OpenAPI.TOKEN = token;
  const body: SubmitGrant = {
    integration_id: integrationId,
    resource_id: resourceId,
    access_level: AccessLevel.READ,
    principal: { type: PrincipalType.IAM_USER, name: "alice" },
    duration_seconds: 3600,
    request_id: "REQ-1042",
    approved_by: "bob@example.com",
  };
  try {
    const grant = await GrantsService.submitGrant(body, 20);
    return grant.status === GrantStatus.ACTIVE ? grant : `not active yet: ${grant.status}`;
  } catch (error) {
    if (error instanceof ApiError) {
      return `${error.status}: ${error.body.error.code} (${error.body.error.field ?? "no field"})`;
    }
    throw error;
  }
}
