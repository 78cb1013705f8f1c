export { exportMirror, writeMirrorIndexHead } from './export.js'
export type { ExportMirrorOptions, ExportMirrorReport, MirrorExportBlockDetail, MirrorExportProgressEvents } from './export.js'
export { FsProvider } from './fs-provider.js'
export type { FsProviderInit } from './fs-provider.js'
