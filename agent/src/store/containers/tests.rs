use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use redb::TableDefinition;

use super::ContainerStore;
use crate::containers::{ContainerRecord, ProcessConfig, State, Status};

fn record(n: u8, name: &str, image_id: &str, status: Status, labels: &[(&str, &str)]) -> ContainerRecord {
    ContainerRecord {
        id: format!("{n:02x}").repeat(32),
        name: name.to_owned(),
        image: "busybox".to_owned(),
        image_id: image_id.to_owned(),
        created: i64::from(n),
        process: ProcessConfig::default(),
        labels: labels.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        auto_remove: false,
        log: Default::default(),
        resources: Default::default(),
        restart: Default::default(),
        healthcheck: None,
        state: State {
            status,
            pid: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            exit_signal: None,
            oom_killed: false,
            error: String::new(),
            restart_count: 0,
            manually_stopped: false,
            restart_delay_ms: 0,
            health: None,
        },
    }
}

fn ids(recs: &[&ContainerRecord]) -> BTreeSet<String> {
    recs.iter().map(|r| r.id.clone()).collect()
}

fn open() -> (tempfile::TempDir, Arc<redb::Database>, ContainerStore) {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).unwrap());
    let store = ContainerStore::open(db.clone(), &dir.path().join("meta.redb")).unwrap();
    (dir, db, store)
}

#[test]
fn indexes_answer_by_status_label_image_and_name() {
    let (_dir, _db, store) = open();
    let web = record(1, "web", "img-a", Status::Running, &[("tier", "front"), ("team", "x")]);
    let db = record(2, "db", "img-b", Status::Exited, &[("tier", "back")]);
    let job = record(3, "job", "img-a", Status::Created, &[("team", "x")]);
    for r in [&web, &db, &job] {
        store.put(r).unwrap();
    }
    assert_eq!(store.get(&web.id).unwrap().unwrap().name, "web");
    assert_eq!(store.id_by_name("db").unwrap(), Some(db.id.clone()));
    assert_eq!(store.id_by_name("nope").unwrap(), None);
    assert_eq!(store.ids_with_prefix("0").unwrap(), [web.id.clone(), db.id.clone(), job.id.clone()]);
    assert_eq!(store.ids_with_prefix("02").unwrap(), vec![db.id.clone()]);
    assert_eq!(store.ids_with_status(&[Status::Running, Status::Paused]), ids(&[&web]));
    assert_eq!(store.ids_with_status(&[Status::Exited, Status::Created]), ids(&[&db, &job]));
    assert_eq!(store.ids_with_label("tier", None), ids(&[&web, &db]));
    assert_eq!(store.ids_with_label("tier", Some("back")), ids(&[&db]));
    assert_eq!(store.ids_with_label("team", Some("x")), ids(&[&web, &job]));
    // A key that is a prefix of another is not that key.
    assert!(store.ids_with_label("tie", None).is_empty());
    assert!(store.ids_with_label("tier", Some("fro")).is_empty());
    assert_eq!(store.ids_of_image("img-a"), ids(&[&web, &job]));
    assert_eq!(store.image_ids(), ["img-a".to_owned(), "img-b".to_owned()].into());
    let counts = store.count_by_status();
    assert_eq!(
        counts,
        HashMap::from([(Status::Created, 1), (Status::Running, 1), (Status::Paused, 0), (Status::Exited, 1)])
    );
    let many = store.get_many([job.id.as_str(), "gone", web.id.as_str()]).unwrap();
    assert_eq!(many.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(), ["job", "web"]);
}

#[test]
fn a_state_change_moves_the_record_in_the_status_index_and_delete_empties_every_index() {
    let (_dir, _db, store) = open();
    let mut web = record(1, "web", "img-a", Status::Created, &[("tier", "front")]);
    store.put(&web).unwrap();
    web.state.status = Status::Running;
    store.put(&web).unwrap();
    web.state.status = Status::Exited;
    store.put(&web).unwrap();
    assert!(store.ids_with_status(&[Status::Created, Status::Running]).is_empty());
    assert_eq!(store.ids_with_status(&[Status::Exited]), ids(&[&web]));

    store.delete(&web.id).unwrap();
    assert!(store.get(&web.id).unwrap().is_none());
    assert_eq!(store.id_by_name("web").unwrap(), None);
    assert!(store.ids_with_status(&[Status::Exited]).is_empty());
    assert!(store.ids_with_label("tier", None).is_empty());
    assert!(store.ids_of_image("img-a").is_empty());
    assert!(store.image_ids().is_empty());
    // Deleting what is not there is not an error.
    store.delete(&web.id).unwrap();
}

#[test]
fn deleting_a_record_leaves_its_name_to_the_container_that_holds_it_now() {
    let (_dir, _db, store) = open();
    let old = record(1, "web", "img-a", Status::Exited, &[]);
    store.put(&old).unwrap();
    let new = record(2, "web", "img-a", Status::Created, &[]);
    store.put(&new).unwrap();
    store.delete(&old.id).unwrap();
    assert_eq!(store.id_by_name("web").unwrap(), Some(new.id.clone()));
}

/// A database written by a berth from before the name index (records
/// only) gets it built when the store opens, and the in-memory indexes
/// answer for its records; the records stay as they were.
#[test]
fn a_database_from_before_the_indexes_gets_them_built() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(redb::Database::create(dir.path().join("meta.redb")).unwrap());
    let web = record(1, "web", "img-a", Status::Running, &[("tier", "front")]);
    let db_rec = record(2, "db", "img-b", Status::Exited, &[]);
    {
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(TableDefinition::<&str, &[u8]>::new("containers")).unwrap();
            for r in [&web, &db_rec] {
                t.insert(r.id.as_str(), serde_json::to_vec(r).unwrap().as_slice()).unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let store = ContainerStore::open(db.clone(), &dir.path().join("meta.redb")).unwrap();
    assert_eq!(store.id_by_name("web").unwrap(), Some(web.id.clone()));
    assert_eq!(store.ids_with_status(&[Status::Running]), ids(&[&web]));
    assert_eq!(store.ids_with_label("tier", Some("front")), ids(&[&web]));
    assert_eq!(store.ids_of_image("img-b"), ids(&[&db_rec]));
    assert_eq!(store.all().unwrap().len(), 2);
    // Opening again keeps what is there.
    let again = ContainerStore::open(db, &dir.path().join("meta.redb")).unwrap();
    assert_eq!(again.ids_with_status(&[Status::Exited]), ids(&[&db_rec]));
}
