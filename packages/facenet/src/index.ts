// Public API of the FaceNet core library: model zoo, loss and mining, data, evaluation,
// checkpoints and backend selection. No network code lives here.
export { tf } from './backend/tf';
export { selectBackend, currentBackend, parseBackendName, BACKEND_ORDER } from './backend/select-backend';
export { gpuAdapter, readsSynchronously, vulkanUnavailable, SWIFTSHADER_ICD } from './backend/webgpu';
export type { GpuAdapterInfo } from './backend/webgpu';
export type { BackendName, BackendChoice, SelectBackendOptions } from './backend/select-backend';
export { conv2dFilterGradient, conv2dInputGradient, pointwiseConvGradients } from './backend/conv-gradients';
export { maxPoolGradFirstMax } from './backend/maxpool-gradient';
export { splitLastAxis } from './backend/concat-gradient';
export { batchNormTraining } from './backend/batch-norm';
export { useProjectKernels, projectKernelsInstalled, projectKernelsApply } from './backend/project-kernels';
export * from './errors';
export * from './error-envelope';

export { LayerBuilder } from './model/layers';
export { ParamStore } from './model/param-store';
export { EmbeddingModel, compileModelOptions } from './model/embedding-model';
export type { ModelOptions, ModelConfig } from './model/embedding-model';
export { ZOO, ARCHITECTURES } from './model/zoo';
export type { ArchitectureName } from './model/zoo';

export { selectTriplets, semiHardTriplets, batchHardTriplets, SELECTION_STRATEGIES } from './loss/triplet-selection';
export type { SelectionStrategy, Triplet, TripletSelection } from './loss/triplet-selection';
export { tripletLoss, pairwiseSquaredDistances } from './loss/triplet-loss';

export { Optimizer, compileOptimizerOptions, OPTIMIZERS } from './optim/optimizer';
export type { OptimizerOptions, OptimizerConfig, OptimizerName } from './optim/optimizer';
export { learningRateAt, compileScheduleOptions } from './optim/schedule';
export type { ScheduleOptions, ScheduleConfig, ScheduleKind } from './optim/schedule';

export type { FaceSource, IdentityIndex, SquareImage } from './data/face-source';
export { identitySizes, imageCount, subIndex } from './data/face-source';
export { packShardIndex, ShardsSource, shardName, SHARD_INDEX } from './data/shards-source';
export type { ShardsSourceOptions } from './data/shards-source';
export { packShards } from './data/shards-writer';
export type { PackShardsResult } from './data/shards-writer';
export { CachedStore, isRemote, objectStoreFor } from './data/storage/stores';
export type { ObjectStore } from './data/storage/object-store';
export { DiskCache, processCache } from './data/storage/disk-cache';
export type { CacheStats } from './data/storage/disk-cache';
export { HttpStore } from './data/storage/http-store';
export { ManifestSource, packManifest, MAX_MANIFEST_IMAGES } from './data/manifest-source';
export type { ManifestScanOptions, ManifestSourceOptions } from './data/manifest-source';
export { PackedIndexBuilder, packIndex, unpackIndex } from './data/packed-index';
export type { UnpackedIndex } from './data/packed-index';
export { lazyList } from './util/lazy-list';
export { FolderSource, packPeopleFolder, scanPeopleFolder, scanPeopleFolderAsync, MAX_FOLDER_IMAGES } from './data/folder-source';
export type { FolderScanOptions, FolderSourceOptions } from './data/folder-source';
export { SyntheticSource } from './data/synthetic-source';
export { FilesSource, listImages } from './data/files-source';
export { SubsetSource, splitHoldout } from './data/subset-source';
export type { SyntheticOptions } from './data/synthetic-source';
export { decodeSquare, decodeSquareBytes, isImagePath } from './data/decode-image';
export { cropToFloat } from './data/augment';
export { decodeNetpbm } from './data/netpbm';
export { samplePK, splitByIdentity, compilePKOptions, identityClasses } from './data/pk-sampler';
export type { PKOptions, PKConfig, PKBatch, BatchItem } from './data/pk-sampler';
export { loadImages } from './data/load-images';
export type { LoadedImages, SkippedImage } from './data/load-images';

export { imagesOfPairsPeople, parsePairs, readPairsFile, lfwImagePath, pairSetFromFile } from './eval/pairs';
export type { FacePair, PairsFile } from './eval/pairs';
export { embeddedRows } from './eval/embed-union';
export { allPairsValFar } from './eval/all-pairs';
export type { AllPairsOptions, AllPairsPoint, AllPairsReport } from './eval/all-pairs';
export { valFarAt, accuracyAt, bestAccuracyThreshold, thresholdForFar, evaluateFolds, roc } from './eval/verification';
export type { ValFar, FoldReport, Roc } from './eval/verification';
export { rocPng } from './eval/roc-plot';
export { verificationReportHtml, worstErrors } from './eval/report-html';
export { eigenfaceEmbeddings, fitEigenfaces } from './eval/eigenfaces';
export type { Eigenfaces, FitEigenfacesOptions } from './eval/eigenfaces';
export type { ReportPair, VerificationReportInput } from './eval/report-html';
export { quantizeEmbeddings, dequantizeEmbeddings, fitQuantScale } from './eval/quantize';
export type { QuantizedEmbeddings } from './eval/quantize';
export { squaredDistance, pairDistances } from './eval/distances';
export { agglomerativeCluster, nearestNeighbours } from './eval/cluster';
export { embedImages } from './eval/embed-images';
export type { EmbeddedImages } from './eval/embed-images';
export { holdoutPairs } from './eval/holdout-pairs';
export type { PairSet } from './eval/holdout-pairs';
export { evaluatePairs, scorePairs } from './eval/evaluate-pairs';
export type { EvaluationResult, EvaluatePairsOptions } from './eval/evaluate-pairs';

export {
  writeCheckpoint,
  readCheckpoint,
  restoreCheckpoint,
  loadModel,
  resolveCheckpointDir,
  CHECKPOINT_FORMAT,
} from './checkpoint/checkpoint';
export type { CheckpointManifest, CheckpointContents, Preprocessing } from './checkpoint/checkpoint';

export { computeShardGradients, shardGradients, accumulate, meanStats, disposeGradients, TRIPLET_ONLY } from './train/shard-gradients';
export { applyUpdate, applyUpdateGuarded, checkFiniteVector, allFinite } from './train/guarded-update';
export { loadStepShards, stepGradients, applyStep } from './train/training-step';
export { classificationLoss, CLASSIFICATION_HEADS } from './loss/classification-loss';
export type { ClassificationHead } from './loss/classification-loss';
export {
  CLASS_WEIGHTS,
  CLASSIFICATION_MODES,
  compileClassificationOptions,
  lossWeightsAt,
  MAX_CLASS_WEIGHTS,
  trainingModel,
} from './train/objective';
export type { ClassificationConfig, ClassificationMode, ClassificationOptions } from './train/objective';
export type { ShardGradients, ShardInput, StepObjective, TripletStats } from './train/shard-gradients';
export { compileTrainOptions, MAX_STEPS } from './train/train-options';
export { parseTrainSpec, specIssues, trainOptionsSchema } from './train/train-spec';
export type { TrainOptions, TrainConfig } from './train/train-options';
export { Trainer, checkpointName } from './train/trainer';
export type { StepReport, TrainerEvents } from './train/trainer';

export { rngFor, hashString, sampled, shuffled } from './util/random';
export type { Rng } from './util/random';

export { flatLayout, flattenGradients, unflattenGradients, flatStats } from './train/flat-vector-codec';
export type { FlatLayout } from './train/flat-vector-codec';
export { mineTriplets, mineTripletsBruteForce } from './mining/mine-triplets';
export type { MiningOptions, MinedTriplet, MiningStats } from './mining/mine-triplets';
export { confusableIdentities } from './mining/confusable';
export { mineTripletsRestricted, mineTripletsRestrictedParallel, miningRecall } from './mining/restricted-mining';
export type { RestrictedMiningOptions, Triplets } from './mining/restricted-mining';
export { TripletTable } from './mining/triplet-table';
export { forEachDistanceTile } from './mining/distance-tiles';
export { writeReportFile, writeReportFolder } from './eval/report-files';
export type { ReportContent } from './eval/report-files';
export { modelFootprint } from './model/footprint';
export type { ModelFootprint } from './model/footprint';
export { rankLoad, stepFootprint } from './train/step-footprint';
export type { RankLoad, StepFootprint } from './train/step-footprint';

export { exportModel, exportMetadata, EXPORT_FORMATS } from './export/export-model';
export { readExportMetadata, readTfjsExport } from './export/export-files';
export type { TfjsExportFiles } from './export/export-files';
export type { ExportFormat, ExportMetadata, ExportResult } from './export/export-model';
export { traceInferenceGraph } from './export/inference-graph';
export type { InferenceGraph, GraphNode } from './export/inference-graph';
export type { NetBuilder } from './model/net-builder';

export { tfjsEmbedder, tfjsRunnerEmbedder, INFERENCE_ENGINES } from './inference/image-embedder';
export type { ImageEmbedder, InferenceEngineChoice } from './inference/image-embedder';
export {
  createEmbedder,
  exportedOnnxEmbedder,
  inferenceSettings,
  logChanges,
  withEmbedder,
  ENGINE_AGREEMENT_TOLERANCE,
} from './inference/create-embedder';
export type { EmbedderOptions } from './inference/create-embedder';
