// `baton validate --schema`: the JSON Schema (draft 2020-12) of baton.yaml, for editors (a YAML
// language server shows each key's description as its hover) and for validators in strict mode
// (ajv 8 with strict: true compiles it; test/config-schema.test.ts says so). zod writes it from
// the config schema; what zod cannot say well is put right here: a transform's input (a duration
// is `string | number` to zod) takes the form registered in `editorSchemas`, and formats, which a
// strict validator refuses unless it knows them, give way to patterns.
import { z } from 'zod';
import { editorSchemas } from './schema/values.js';

type Json = Record<string, unknown>;

/** What z.url() accepts starts with a scheme (`http:`, `https:`, any other). */
const URL_SCHEME = '^[A-Za-z][A-Za-z0-9+.-]*:';

/** The JSON Schema of `schema` (the config's), in its input form: what a user writes. */
export function editorJsonSchema(schema: z.ZodType, meta: { title: string; description: string }): Json {
  const json = z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override: ({ zodSchema, jsonSchema }) => {
      const own = registered(zodSchema);
      const j = jsonSchema as Json;
      if (own) {
        for (const key of ['type', 'anyOf', 'oneOf', 'pattern', 'format']) delete j[key];
        Object.assign(j, structuredClone(own));
      }
      if (typeof j.format === 'string') {
        // zod pairs its formats with a pattern (starts_with: "^\/.*"), except z.url()'s.
        if (j.format === 'uri' && j.pattern === undefined) j.pattern = URL_SCHEME;
        delete j.format;
      }
    },
  }) as Json;
  const { $schema, ...rest } = json;
  return { $schema, title: meta.title, description: meta.description, ...rest };
}

/** The form registered for `schema`, or for the schema it was cloned from (by .describe()). */
function registered(schema: z.core.$ZodType): Json | undefined {
  for (let s: z.core.$ZodType | undefined = schema; s; s = s._zod.parent) {
    const own = editorSchemas.get(s);
    if (own) return own.jsonSchema;
  }
  return undefined;
}
