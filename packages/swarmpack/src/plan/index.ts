export { computePlan } from './plan.js'
export type { Plan, PlanChange, PlanAction, LocalBlocks } from './plan.js'
