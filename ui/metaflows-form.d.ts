// Types of ui/metaflows-form.js, for its unit test.
export interface FeaturesForm {
  transferOn: boolean;
  transferCode: string;
  resumeOn: boolean;
  resumeCode: string;
  bindingDigit: string;
  digitTimeout: number | string;
  listenOn: string;
  ringTimeout: number | string;
  moh: string;
}
type Metaflows = Record<string, unknown> & { numbers?: Record<string, unknown>; patterns?: Record<string, unknown> };
export function formOf(m: Metaflows): FeaturesForm;
export function keysOf(form: FeaturesForm, loaded: Metaflows): { transferKey: string; resumeKey: string };
export function mergeForm(loaded: Metaflows, form: FeaturesForm): { metaflows: Metaflows; error?: undefined } | { error: { field: string; message: string }; metaflows?: undefined };
